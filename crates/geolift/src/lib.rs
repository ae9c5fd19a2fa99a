//! Geo-lift: regional panels → lift estimates with inference, and experiment design.
