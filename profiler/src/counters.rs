//! TODO(owner): see record.rs
