//! The recording model built from events.
