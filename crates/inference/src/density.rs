/// An unnormalised log density over an unconstrained parameter vector, with its gradient.
///
/// This is the one interface between models and inference (the shape of nuts-rs's `CpuLogpFunc`):
/// `logp_grad` writes ∂log p/∂x into `grad` (length [`LogDensity::dim`]) and returns log p(x),
/// Jacobian terms of any constraining transforms included.
pub trait LogDensity: Send + Sync {
    /// Number of unconstrained parameters.
    fn dim(&self) -> usize;

    /// Log density at `x` with its gradient written into `grad`.
    fn logp_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError>;

    /// Names of the unconstrained coordinates, for diagnostics and error messages.
    fn param_names(&self) -> Vec<String> {
        (0..self.dim()).map(|i| format!("x[{i}]")).collect()
    }

    /// Which coordinates interact ([`crate::HessianSparsity`]: shared coordinates and blocks that
    /// do not interact with each other), when the density's formula guarantees it: the Laplace
    /// approximation's finite-difference Hessians then perturb one coordinate of every block at
    /// once ([`crate::sparsity`]). `None` (the default) takes every Hessian column by column.
    fn hessian_sparsity(&self) -> Option<crate::HessianSparsity> {
        None
    }

    /// The Hessian of log p at `x` for preconditioning the Laplace mode search (its shape, not its
    /// last digits), with the gradient evaluations it took, when the density has a cheaper route
    /// to it than forward differences ([`crate::laplace::hessian_forward`], the default `None`),
    /// e.g. the Hessian of a sparser parametrisation of the same model mapped back. `Some(Err)`
    /// when it cannot be computed at `x` (the search then runs that round unpreconditioned, as it
    /// does when forward differences fail).
    fn preconditioner_hessian(&self, x: &[f64]) -> Option<Result<crate::CountedHessian, crate::InferenceError>> {
        let _ = x;
        None
    }
}

/// A failure to evaluate the log density.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogDensityError {
    /// The point is outside the model's support or the density is not finite there: a sampler
    /// treats this as a rejected proposal (a divergence) and carries on.
    #[error("log density not finite at this point: {0}")]
    Recoverable(String),
    /// Something is wrong with the model itself; sampling must stop.
    #[error("log density cannot be evaluated: {0}")]
    Fatal(String),
}

impl LogDensityError {
    /// Whether a sampler may reject the point and continue.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, LogDensityError::Recoverable(_))
    }
}
