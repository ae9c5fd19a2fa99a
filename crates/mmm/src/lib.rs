//! Bayesian marketing-mix models: data → model → posterior → analysis.
