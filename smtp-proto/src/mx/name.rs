//! Host names as the MX planner sees them: [`crate::dns::HostName`], the
//! RFC 5321 `Domain` subset of DNS names.

pub use crate::dns::{HostName, HostNameError, MAX_HOST_NAME_LEN, MAX_LABEL_LEN};
