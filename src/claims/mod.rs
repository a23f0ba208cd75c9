//! Claims: what an upstream login says about a user, turned into what Portico's tokens say.
//!
//! Group names come from many directories, and a name means nothing outside its directory: a
//! group `admin` at GitHub is not the `admin` of the corporate IdP. This module holds the rules
//! that decide which names pass; `pattern` is the matcher that providers (allow and deny lists)
//! and clients (a group filter per app) share, so that one syntax means one thing everywhere;
//! `pipeline` is each provider's chain of rules (prefix, filter, rename, cap, static and extra
//! claims) that every connector runs its login through; `selection` is what one app receives:
//! its claim list and group filter, applied to the final JSON object of user claims.

pub mod pattern;
pub mod pipeline;
pub mod selection;

pub use pattern::{GroupFilter, GroupPattern, PatternError};
pub use pipeline::{ClaimPath, ClaimRules, MappedClaims, RawClaims, apply};
pub use selection::{ClaimSelection, PROTOCOL_CLAIMS, SelectionError};
