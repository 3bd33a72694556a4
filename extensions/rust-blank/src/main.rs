//! The blank extension: registers for INVOKE and SHUTDOWN and logs each event.
use lambda_extension::{Error, LambdaEvent, NextEvent, service_fn};

async fn on_event(event: LambdaEvent) -> Result<(), Error> {
    match event.next {
        NextEvent::Invoke(e) => println!("rust-blank: INVOKE {}", e.request_id),
        NextEvent::Shutdown(e) => println!("rust-blank: SHUTDOWN {}", e.shutdown_reason),
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_extension::run(service_fn(on_event)).await
}
