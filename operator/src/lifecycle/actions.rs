//! The approval ladder: which SubscriptionAction fits which phase. Only these steps move an
//! Approval subscription towards Active; there is no other way from Paid to service.

use crate::api::listing::Activation;
use crate::api::subscription_action::ActionKind;
use crate::api::tenant_subscription::Phase;

/// What to do with an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionDecision {
    /// Move the subscription to `to`.
    Accept { to: Phase },
    /// The action does not fit; the message says why and what would.
    Refuse(String),
    /// The subscription has not been looked at yet; try again shortly.
    Wait(String),
}

/// The phases an action may be taken in.
pub fn allowed_phases(action: ActionKind) -> &'static [Phase] {
    match action {
        ActionKind::Invoice => &[Phase::Requested],
        ActionKind::MarkPaid => &[Phase::Invoiced],
        ActionKind::Approve => &[Phase::Paid],
        ActionKind::Reject => &[
            Phase::Requested,
            Phase::Invoiced,
            Phase::Paid,
            Phase::Provisioning,
        ],
        ActionKind::ConfirmCancel => &[Phase::CancelRequested],
        ActionKind::Rollback => &[Phase::Provisioning],
    }
}

/// Decides `action` for a subscription in `phase` of a listing activated by `activation`.
pub fn decide_action(
    action: ActionKind,
    phase: Option<Phase>,
    activation: Activation,
) -> ActionDecision {
    let Some(phase) = phase else {
        return ActionDecision::Wait("the subscription has not been validated yet".into());
    };
    let ladder = matches!(
        action,
        ActionKind::Invoice | ActionKind::MarkPaid | ActionKind::Approve
    );
    if ladder && activation == Activation::Instant {
        return ActionDecision::Refuse(format!(
            "{action:?} is an approval step, but the subscription's listing activates instantly"
        ));
    }
    let allowed = allowed_phases(action);
    if !allowed.contains(&phase) {
        let fits = allowed
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(" or ");
        return ActionDecision::Refuse(format!(
            "{action:?} does not fit a subscription in phase {phase:?}; it needs {fits}"
        ));
    }
    let to = match action {
        ActionKind::Invoice => Phase::Invoiced,
        ActionKind::MarkPaid => Phase::Paid,
        ActionKind::Approve => Phase::Provisioning,
        ActionKind::Reject => Phase::Rejected,
        ActionKind::ConfirmCancel => Phase::Cancelled,
        ActionKind::Rollback => Phase::Failed,
    };
    ActionDecision::Accept { to }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_PHASES: [Phase; 11] = [
        Phase::Requested,
        Phase::Invoiced,
        Phase::Paid,
        Phase::Provisioning,
        Phase::Trialing,
        Phase::Active,
        Phase::Suspended,
        Phase::CancelRequested,
        Phase::Cancelled,
        Phase::Rejected,
        Phase::Failed,
    ];
    const ALL_ACTIONS: [ActionKind; 6] = [
        ActionKind::Invoice,
        ActionKind::MarkPaid,
        ActionKind::Approve,
        ActionKind::Reject,
        ActionKind::ConfirmCancel,
        ActionKind::Rollback,
    ];

    #[test]
    fn the_ladder_walks_in_order() {
        let a = Activation::Approval;
        let mut phase = Phase::Requested;
        for action in [
            ActionKind::Invoice,
            ActionKind::MarkPaid,
            ActionKind::Approve,
        ] {
            match decide_action(action, Some(phase), a) {
                ActionDecision::Accept { to } => phase = to,
                other => panic!("{action:?} in {phase:?}: {other:?}"),
            }
        }
        assert_eq!(phase, Phase::Provisioning);
    }

    #[test]
    fn only_approve_from_paid_leads_towards_service() {
        for action in ALL_ACTIONS {
            for phase in ALL_PHASES {
                for activation in [Activation::Instant, Activation::Approval] {
                    if let ActionDecision::Accept { to } =
                        decide_action(action, Some(phase), activation)
                    {
                        assert!(
                            !matches!(to, Phase::Active | Phase::Trialing),
                            "{action:?} in {phase:?} activates directly"
                        );
                        if to == Phase::Provisioning {
                            assert_eq!(
                                (action, phase, activation),
                                (ActionKind::Approve, Phase::Paid, Activation::Approval)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn misfits_are_refused_with_the_reason() {
        let ActionDecision::Refuse(why) = decide_action(
            ActionKind::Approve,
            Some(Phase::Invoiced),
            Activation::Approval,
        ) else {
            panic!("approve before payment must be refused");
        };
        assert!(why.contains("Invoiced") && why.contains("Paid"), "{why}");
        assert!(matches!(
            decide_action(
                ActionKind::Invoice,
                Some(Phase::Requested),
                Activation::Instant
            ),
            ActionDecision::Refuse(_)
        ));
        assert!(matches!(
            decide_action(
                ActionKind::Reject,
                Some(Phase::Active),
                Activation::Approval
            ),
            ActionDecision::Refuse(_)
        ));
        assert!(matches!(
            decide_action(ActionKind::Reject, None, Activation::Approval),
            ActionDecision::Wait(_)
        ));
        assert_eq!(
            decide_action(
                ActionKind::Rollback,
                Some(Phase::Provisioning),
                Activation::Instant
            ),
            ActionDecision::Accept { to: Phase::Failed }
        );
    }
}
