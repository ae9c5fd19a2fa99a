//! The measurement loop: calibration records flow from geo-lift readouts into MMM priors, evidence
//! ages, and the next experiments are ranked by information gain and value of information.
//!
//! The cycle itself lands with the loop issues; today this crate only fixes the dependency graph
//! (`loop` → {`mmm`, `geolift`}; `mmm` and `geolift` never depend on each other).
