/// Why an inference run could not produce a posterior.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    /// The settings cannot be used (zero chains, a target acceptance outside (0, 1), ...).
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// The model has no parameters, or a starting point has the wrong length.
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// No starting point with a finite log density and gradient was found.
    #[error(
        "chain {chain}: no starting point with a finite log density and gradient in {attempts} attempts \
         (last: {last}); check the model's support and transforms, or give a starting point"
    )]
    Initialization { chain: usize, attempts: usize, last: String },
    /// The log density returned [`crate::LogDensityError::Fatal`]: the run was aborted.
    #[error("chain {chain}, iteration {iteration}: the log density failed fatally, sampling aborted: {message}")]
    FatalDensity { chain: usize, iteration: u64, message: String },
    /// nuts-rs reported an error it could not recover from.
    #[error("chain {chain}: sampler failure: {message}")]
    Sampler { chain: usize, message: String },
    /// The optimiser behind the Laplace approximation failed.
    #[error("optimisation failed: {0}")]
    Optimization(String),
    /// The negative Hessian of the log density at the mode is not positive definite, so the mode is
    /// not a proper maximum (or the posterior is improper / unidentified in some direction).
    #[error(
        "the negative Hessian at the mode is not positive definite: along the direction dominated by \
         `{worst_param}` (eigenvalue {worst_eigenvalue:.3e}; {n_nonpositive} of {dim} eigenvalues ≤ 0) the log density \
         is flat or curves upward. The parameter may be unidentified or need a stronger prior; \
         a Laplace approximation is not valid here"
    )]
    NotPositiveDefinite {
        worst_param: String,
        worst_eigenvalue: f64,
        /// The eigenvector of the smallest eigenvalue, in parameter order.
        worst_direction: Vec<f64>,
        n_nonpositive: usize,
        dim: usize,
    },
}
