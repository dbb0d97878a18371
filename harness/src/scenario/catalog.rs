//! The named scenarios. Timings are for a debug build on two busy cores: each run is 10–13 s of
//! workload (the retry storm's 20 s, to see recovery after the heal) plus start, read drain,
//! quiesce and check.
//!
//! Every call between roles crosses a link proxy, a node's calls to its own roles included, so
//! a fault on the links into payment covers every charge and refund wherever the leaders are;
//! the payment scenarios drop the replies of exactly the route they mean (`POST /charge`,
//! `POST /refund`) with the proxy's HTTP-aware toxic.

use std::time::Duration;

use formats::effects::{EffectViolation, Ledger, StepKind};
use formats::expectation::{CheckId, Measure, Requirement, Subject};
use formats::fault::{FaultPlan, Links, NetEffect, Planned, Route, Shape, Target};
use formats::final_state::OrderStatus;
use formats::spec::{InventoryMode, RunConfig, Switches, WorkloadKind};
use formats::Role;
use formats::Validity::{Invalid, Valid};

use super::{Off, Scenario};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One fault from `at_ms` for `for_ms`.
fn fault(at_ms: u64, for_ms: u64, plan: FaultPlan) -> Planned {
    Planned {
        at: ms(at_ms),
        duration: ms(for_ms),
        plan,
    }
}

/// Replies to `method path` on every link into payment are dropped after the request was
/// delivered (the effect happened, the caller never hears so).
fn lost_replies(at_ms: u64, for_ms: u64, method: &str, path: &str) -> Planned {
    fault(
        at_ms,
        for_ms,
        FaultPlan::Network {
            effect: NetEffect::LostResponse,
            links: Links::Service {
                role: Role::Payment,
            },
            route: Some(Route {
                method: Some(method.into()),
                path: path.into(),
            }),
        },
    )
}

fn verdict_valid() -> Requirement {
    Requirement::is(Subject::Verdict, Valid)
}

/// Every scenario, in `harness scenario list` order.
pub fn all() -> Vec<Scenario> {
    vec![
        stale_leader(),
        lost_response(),
        retried_compensation(),
        retry_storm(),
        consistency(),
    ]
}

/// Fencing against a paused, deposed order leader.
fn stale_leader() -> Scenario {
    Scenario {
        name: "stale-leader",
        protection: "fencing",
        about: "pauses the order leader (SIGSTOP) past its lease so that another node is \
                elected, then resumes it; with --no-lease-check the deposed leader acts on \
                its stale leadership flag for a TTL after its first failed renewal, so its \
                late writes reach the store replicas",
        base: || RunConfig {
            time_limit: ms(11_000),
            concurrency: 12,
            client_timeout: ms(8000),
            switches: Switches {
                no_lease_check: true,
                ..Switches::default()
            },
            faults: vec![fault(
                3000,
                4000,
                FaultPlan::Pause {
                    role: Role::Order,
                    target: Target::Leader,
                },
            )],
            ..RunConfig::default()
        },
        off: Off {
            switches: Switches {
                no_fencing: true,
                ..Switches::default()
            },
            inventory_mode: None,
        },
        claim_on: "the deposed order leader's late writes are refused by the store replicas \
                   (the fencing check lists them) and every check stays valid",
        claim_off: "without fencing the replicas accept the deposed leader's writes under \
                    its stale token: the fencing check is invalid",
        on_requirements: || {
            vec![
                Requirement::with(
                    Valid,
                    "stale order writes rejected",
                    Measure::FencingRejected {
                        domain: "order".into(),
                    },
                    1.0,
                ),
                verdict_valid(),
            ]
        },
        off_requirements: || {
            vec![Requirement::with(
                Invalid,
                "stale order writes accepted",
                Measure::FencingViolations {
                    domain: "order".into(),
                },
                1.0,
            )]
        },
    }
}

/// Idempotency against lost charge replies.
fn lost_response() -> Scenario {
    Scenario {
        name: "lost-response",
        protection: "idempotency",
        about: "drops the replies to POST /charge on every link into payment while the \
                requests still arrive: charges happen, the order leader never hears so, and \
                retries them under the same idempotency key",
        base: || RunConfig {
            time_limit: ms(11_000),
            faults: vec![lost_replies(4000, 4000, "POST", "/charge")],
            ..RunConfig::default()
        },
        off: Off {
            switches: Switches {
                no_idempotency: true,
                ..Switches::default()
            },
            inventory_mode: None,
        },
        claim_on: "charge keys are presented more than once and each made one ledger record \
                   (idempotency check), every order has exactly its effects, every check \
                   valid",
        claim_off: "without idempotency every retried charge is charged again: the effects \
                    check is invalid with double charges",
        on_requirements: || {
            vec![
                Requirement::with(
                    Valid,
                    "charge keys presented more than once with one record",
                    Measure::RepeatedKeys {
                        ledger: Ledger::Payments,
                        step: StepKind::Charge,
                    },
                    1.0,
                ),
                Requirement::is(Subject::Check(CheckId::Effects), Valid),
                verdict_valid(),
            ]
        },
        off_requirements: || {
            vec![Requirement::with(
                Invalid,
                "double charges",
                Measure::EffectViolations {
                    kind: EffectViolation::DoubleCharge,
                },
                1.0,
            )]
        },
    }
}

/// Idempotency of compensations against lost refund replies.
fn retried_compensation() -> Scenario {
    Scenario {
        name: "retried-compensation",
        protection: "idempotency",
        about: "refuses 60% of shipments so that most sagas compensate, and drops the \
                replies to POST /refund on every link into payment while the requests still \
                arrive: refunds happen, the order leader never hears so, and retries every \
                one of them under its key",
        base: || RunConfig {
            time_limit: ms(12_000),
            shipping_failure_rate: Some(0.6),
            faults: vec![lost_replies(3000, 6000, "POST", "/refund")],
            ..RunConfig::default()
        },
        off: Off {
            switches: Switches {
                no_idempotency: true,
                ..Switches::default()
            },
            inventory_mode: None,
        },
        claim_on: "refund keys are presented more than once and each made one refund \
                   (idempotency check), compensated orders have exactly one refund (effects \
                   check), every check valid",
        claim_off: "without idempotency a retried refund is paid out again: the effects \
                    check is invalid with double refunds. (--no-compensation would show lost \
                    refunds whether or not a reply was lost; double refunds are the failure \
                    that retrying a compensation causes, so they prove \"refunded once\".)",
        on_requirements: || {
            vec![
                Requirement::with(
                    Valid,
                    "refund keys presented more than once with one record",
                    Measure::RepeatedKeys {
                        ledger: Ledger::Payments,
                        step: StepKind::Refund,
                    },
                    1.0,
                ),
                Requirement::with(
                    Valid,
                    "compensated orders",
                    Measure::OrdersWithStatus {
                        status: OrderStatus::Compensated,
                    },
                    1.0,
                ),
                verdict_valid(),
            ]
        },
        off_requirements: || {
            vec![Requirement::with(
                Invalid,
                "double refunds",
                Measure::EffectViolations {
                    kind: EffectViolation::DoubleRefund,
                },
                1.0,
            )]
        },
    }
}

/// The retry budget against a storm on payment, with retries at three layers: the callers'
/// policy, the saga repeating its step, and re-drives after the clients' impatient resends.
fn retry_storm() -> Scenario {
    Scenario {
        name: "retry-storm",
        protection: "retry-budget",
        about: "slows every link into payment past the callers' 2 s timeout (the storm \
                fault) while the workload's clients resend their pending orders (each resend \
                re-drives the saga's pending charge) and the saga repeats its step: every \
                attempt times out, and only the retry budget, which counts every repeat of a \
                key, keeps the requests per key at payment bounded; the workload runs 11 s \
                past the heal to measure recovery",
        base: || RunConfig {
            time_limit: ms(20_000),
            faults: vec![fault(
                4000,
                5000,
                FaultPlan::Storm {
                    role: Role::Payment,
                    latency_ms: 2500,
                },
            )],
            ..RunConfig::default()
        },
        off: Off {
            switches: Switches {
                no_retry_budget: true,
                ..Switches::default()
            },
            inventory_mode: None,
        },
        claim_on: "the order leader's retries to payment stay within the budget in every \
                   window while the budget refuses some, and the requests per key arriving at \
                   payment during the storm stay within the budget's bound (retry-load check), \
                   every check valid",
        claim_off: "without the budget every repeat is sent: the retry-load check is invalid \
                    with windows over the budget, and at least 3 requests per key arrive at \
                    payment during the storm",
        on_requirements: || {
            vec![
                Requirement::with(
                    Valid,
                    "payment retries the budget refused",
                    Measure::RetriesRefused {
                        downstream: Role::Payment,
                    },
                    1.0,
                ),
                Requirement::with(
                    Valid,
                    "headroom under the budget's amplification bound",
                    Measure::AmplificationHeadroom,
                    0.0,
                ),
                verdict_valid(),
            ]
        },
        off_requirements: || {
            vec![
                Requirement::with(
                    Invalid,
                    "caller windows over the budget",
                    Measure::WindowsOverBudget,
                    1.0,
                ),
                Requirement::with(
                    Invalid,
                    "amplification at payment (requests per key)",
                    Measure::StormAmplification,
                    3.0,
                ),
            ]
        },
    }
}

/// The consistency swap: the same partition over contended stock with inventory linearizable
/// (leader, fencing, majority quorums) and eventual (any node, W = R = 1).
fn consistency() -> Scenario {
    Scenario {
        name: "consistency",
        protection: "linearizable-inventory",
        about: "clients reserve and release two contended SKUs of 10 units straight at the \
                inventory service while a partition cuts a minority holding the inventory \
                leader from the majority; eventual mode runs the same load and partition with \
                every node accepting locally",
        base: || RunConfig {
            time_limit: ms(10_000),
            rate: 100.0,
            concurrency: 6,
            workload: WorkloadKind::Stock,
            stock_skus: 2,
            initial_stock: 10,
            inventory_mode: Some(InventoryMode::Linearizable),
            faults: vec![fault(
                2000,
                5000,
                FaultPlan::Partition {
                    shape: Shape::MajorityMinority {
                        role: Role::Inventory,
                    },
                },
            )],
            ..RunConfig::default()
        },
        off: Off {
            switches: Switches::default(),
            inventory_mode: Some(InventoryMode::Eventual),
        },
        claim_on: "every stock operation is linearizable across the partition (linearizability \
                   check), every check valid",
        claim_off: "eventual inventory is not linearizable under the partition: the \
                    linearizability check is invalid and names the failing operation",
        on_requirements: || {
            vec![
                Requirement::is(Subject::Check(CheckId::Linearizability), Valid),
                verdict_valid(),
            ]
        },
        off_requirements: || {
            vec![Requirement::is(
                Subject::Check(CheckId::Linearizability),
                Invalid,
            )]
        },
    }
}
