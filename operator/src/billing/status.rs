//! Commerce-subscription `hs_status` values. contract §1.2: the enum is not settled (`past_due`
//! vs `unpaid`, `paused`), so the operator reads the property's options at start-up and maps
//! them to a few classes, treating values it does not know conservatively.

use std::collections::BTreeMap;

/// What a status means to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusClass {
    /// Billing normally (`active`).
    Ok,
    /// Not started yet (`scheduled`); still a live billing record.
    Scheduled,
    /// A payment failed (`past_due`, `unpaid`): suspend the entitlement.
    PaymentProblem,
    /// Paused by an admin.
    Paused,
    /// Ended (`canceled`, `expired`): no longer a live billing record.
    Terminal,
    /// A value we do not know. Conservative: treated as live (never replaced by a new
    /// subscription, never deleted), and reported.
    Unknown,
}

impl StatusClass {
    /// A live record blocks the creation of another one (contract §2.6 step 3).
    pub fn is_live(self) -> bool {
        self != StatusClass::Terminal
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Ok => "ok",
            StatusClass::Scheduled => "scheduled",
            StatusClass::PaymentProblem => "payment_problem",
            StatusClass::Paused => "paused",
            StatusClass::Terminal => "terminal",
            StatusClass::Unknown => "unknown",
        }
    }
}

/// The classes of the values the contract names (developer guide and knowledge base, §1.2).
pub fn known_class(value: &str) -> Option<StatusClass> {
    Some(match value {
        "active" => StatusClass::Ok,
        "scheduled" => StatusClass::Scheduled,
        "past_due" | "unpaid" => StatusClass::PaymentProblem,
        "paused" => StatusClass::Paused,
        "canceled" | "cancelled" | "expired" => StatusClass::Terminal,
        _ => return None,
    })
}

/// The portal's `hs_status` options with their classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMap {
    classes: BTreeMap<String, StatusClass>,
}

impl Default for StatusMap {
    /// Before the bootstrap read the options: the contract's default list.
    fn default() -> Self {
        StatusMap::from_options(
            [
                "active",
                "past_due",
                "unpaid",
                "paused",
                "canceled",
                "expired",
                "scheduled",
            ]
            .iter()
            .map(|s| s.to_string()),
        )
    }
}

impl StatusMap {
    pub fn from_options(options: impl IntoIterator<Item = String>) -> Self {
        let classes = options
            .into_iter()
            .map(|v| {
                let class = known_class(&v).unwrap_or(StatusClass::Unknown);
                (v, class)
            })
            .collect();
        StatusMap { classes }
    }

    /// Options the portal has that the operator cannot classify (logged at start-up).
    pub fn unknown_options(&self) -> Vec<&str> {
        self.classes
            .iter()
            .filter(|(_, c)| **c == StatusClass::Unknown)
            .map(|(v, _)| v.as_str())
            .collect()
    }

    /// Whether the portal offers the value at all.
    pub fn has(&self, value: &str) -> bool {
        self.classes.contains_key(value)
    }

    pub fn classify(&self, value: &str) -> StatusClass {
        self.classes
            .get(value)
            .copied()
            .or_else(|| known_class(value))
            .unwrap_or(StatusClass::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_known_and_unknown_values() {
        let m = StatusMap::from_options(
            ["active", "unpaid", "canceled", "on_hold"]
                .iter()
                .map(|s| s.to_string()),
        );
        assert_eq!(m.classify("active"), StatusClass::Ok);
        assert_eq!(m.classify("unpaid"), StatusClass::PaymentProblem);
        assert_eq!(m.classify("canceled"), StatusClass::Terminal);
        assert_eq!(m.classify("on_hold"), StatusClass::Unknown);
        assert!(StatusClass::Unknown.is_live());
        assert!(!StatusClass::Terminal.is_live());
        assert_eq!(m.unknown_options(), vec!["on_hold"]);
        // Not offered by the portal but known: still classified.
        assert_eq!(m.classify("paused"), StatusClass::Paused);
        assert_eq!(m.classify(""), StatusClass::Unknown);
        assert!(StatusMap::default().has("scheduled"));
    }
}
