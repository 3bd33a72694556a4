//! Exporters: model → files.
