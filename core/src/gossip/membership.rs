//! HyParView peer sampling.

/// Placeholder until the membership lands.
pub struct Membership;
/// Placeholder.
pub struct MembershipConfig;
/// Placeholder.
pub enum MembershipOutput {}
