//! Least privilege, proven: the chart's rendered RBAC is applied to a real apiserver (audit log
//! on, OwnerReferencesPermissionEnforcement on), `marketplace operator` and `marketplace api`
//! run in-process with the chart's flags as the chart's ServiceAccounts (their own tokens), and
//! a scenario walks every code path: catalog sync and prune, tenant provisioning, purchases
//! (in-app, integration with its Secret, approval ladder from the console), webhook-driven
//! suspension, drift audit, cancellation, webhook certificate rotation, usage flush, leader
//! Lease, Events; and `kubectl marketplace` as a person holding only the chart's superadmin
//! role. Then the audit log must show no request of theirs refused, and every grant
//! of `operator/src/process/permissions.rs` used at least once.
//!
//! Skips, saying so, when helm is not installed (`scripts/install-helm`); fails instead under CI
//! (`MARKETPLACE_REQUIRE_TEST_TOOLS`, which `.ci/run` sets).

mod least_privilege_support;

use least_privilege_support::{Scenario, World};
use marketplace_e2e::audit::{self, exercises};
use marketplace_e2e::helm::Helm;
use marketplace_operator::process::permissions::{self, Grant, grants};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_charts_rbac_is_enough_and_every_grant_is_used() {
    let started = std::time::Instant::now();
    let Some(helm) = Helm::for_test("the_charts_rbac_is_enough_and_every_grant_is_used") else {
        return;
    };
    let mut world = World::start(&helm).await;
    let scenario = Scenario::run(&world).await;
    let (operator_settings, api_settings) = world.stop().await;

    let events = audit::read(world.control_plane.audit_log_path().expect("audit log on"));
    let mut failures = Vec::new();
    for (who, user, listed) in [
        (
            "operator",
            &world.operator_user,
            permissions::operator(&operator_settings),
        ),
        ("api", &world.api_user, permissions::api(&api_settings)),
    ] {
        let refused = audit::refused(&events, user);
        if !refused.is_empty() {
            failures.push(format!(
                "the apiserver refused the {who} ({user}) what its chart RBAC lacks:\n  {}",
                refused.into_iter().collect::<Vec<_>>().join("\n  ")
            ));
        }
        let used: Vec<Grant> = audit::own_requests(&events, user)
            .filter(|e| e.code() != 403 && e.code() != 401)
            .flat_map(|e| e.used(&world.namespace))
            .collect();
        let impersonated = audit::impersonations(&events, user);
        let checked_inside = scenario.checked_inside(&world, user).await;
        let unused: Vec<String> = grants(&listed)
            .into_iter()
            .filter(|g| {
                !used.iter().any(|u| exercises(u, g))
                    && !impersonated.contains(g)
                    && !checked_inside.contains(g)
                    && !permissions::NOT_EXERCISED_BY_THE_SUITE
                        .iter()
                        .any(|(resource, verb, _)| g.resource == *resource && g.verb == *verb)
            })
            .map(|g| g.to_string())
            .collect();
        let explained: Vec<&str> = permissions::NOT_EXERCISED_BY_THE_SUITE
            .iter()
            .filter(|(resource, verb, _)| {
                grants(&listed).iter().any(|g| {
                    g.resource == *resource
                        && g.verb == *verb
                        && !used.iter().any(|u| exercises(u, g))
                })
            })
            .map(|(_, _, why)| *why)
            .collect();
        eprintln!(
            "{who}: {} grants, {} used by requests, {} impersonations, {} checked inside requests, unused but explained: {explained:?}",
            grants(&listed).len(),
            grants(&listed)
                .iter()
                .filter(|g| used.iter().any(|u| exercises(u, g)))
                .count(),
            impersonated.len(),
            checked_inside.len(),
        );
        if !unused.is_empty() {
            failures.push(format!(
                "the {who} is granted what no code path of the scenario used (drop it from permissions.rs and the chart, or say in NOT_EXERCISED_BY_THE_SUITE why no test can reach it):\n  {}",
                unused.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "least privilege: {} audit events checked in {:.1}s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
}
