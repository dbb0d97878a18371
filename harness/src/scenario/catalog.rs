//! The named scenarios. Timings are for a debug build on two busy cores: each run is 11–13 s of
//! workload plus start, read drain, quiesce and check (about 20 s in all).
//!
//! Why the three payment scenarios first pause payment on the order leader's node: a node
//! reaches its own roles directly, not through the fault proxy, and the order leader calls
//! payment on its own node first. If payment's leader sits on the same node as order's, a
//! toxic on the links into payment never touches a charge. Pausing payment there for longer
//! than a lease (2.5 s) and a campaign moves payment's leadership to another node when it was
//! there (and changes nothing else when it was not), so that every charge and refund after it
//! crosses a proxied link.

use checker::Validity::{Invalid, Valid};

use super::{is, with, with_items, Scenario};

/// Pause payment where the order leader runs, long enough for a new payment leader elsewhere.
const SEPARATE_LEADERS: &str = "kind=pause,role=payment,node=leader-of:order,at=1s,for=3500ms";

/// Pause shipping where the order leader runs: the leader calls its own node's shipping first,
/// so its sagas, charged, wait for their shipment until it resumes (a few get through on a
/// retry to another node while the budget lasts). Without it refunds would come only from
/// charges made during the lost replies, and those are held up by the same lost replies and
/// the retry budget: a handful per run, sometimes none.
const PILE_UP_AT_SHIPPING: &str = "kind=pause,role=shipping,node=leader-of:order,at=5s,for=3s";

/// Every scenario, in `harness scenario list` order.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "stale-leader",
            protection: "fencing",
            about: "pauses the order leader (SIGSTOP) past its lease so that another node is \
                    elected, then resumes it; with --no-lease-check the deposed leader acts on \
                    its stale leadership flag, so its late writes reach the store replicas",
            words: &[
                "--time-limit",
                "11s",
                "--concurrency",
                "12",
                "--client-timeout",
                "8s",
                "--no-lease-check",
                "--fault",
                "kind=pause,role=order,node=leader,at=3s,for=4s",
            ],
            off_words: &["--no-fencing"],
            claim_on: "the deposed order leader's late writes are refused by the store replicas \
                       (the fencing check lists them) and every check stays valid",
            claim_off: "without fencing the replicas accept the deposed leader's writes under \
                        its stale token: the fencing check is invalid",
            on: || {
                vec![
                    with(
                        "fencing",
                        Valid,
                        "stale order writes rejected",
                        "/rejected_by_domain/order",
                        1.0,
                    ),
                    is(checker::expectation::VERDICT, Valid),
                ]
            },
            off: || {
                vec![with_items(
                    "fencing",
                    Invalid,
                    "stale order writes accepted",
                    "/violations",
                    &[("domain", "order")],
                    None,
                )]
            },
        },
        Scenario {
            name: "lost-response",
            protection: "idempotency",
            about: "drops the replies on every link into payment (a timeout toxic) while the \
                    requests still arrive: charges happen, the order leader never hears so, and \
                    retries them under the same idempotency key",
            words: &[
                "--time-limit",
                "11s",
                "--fault",
                SEPARATE_LEADERS,
                "--fault",
                "kind=lost-response,role=payment,links=all,at=5s,for=4s",
            ],
            off_words: &["--no-idempotency"],
            claim_on: "charge keys are presented more than once and each made one ledger record \
                       (idempotency check), every order has exactly its effects, every check \
                       valid",
            claim_off: "without idempotency every retried charge is charged again: the effects \
                        check is invalid with double charges",
            on: || {
                vec![
                    with_items(
                        "idempotency",
                        Valid,
                        "charge keys presented more than once with one record",
                        "/repeated_keys",
                        &[("ledger", "payments"), ("key", ":charge")],
                        None,
                    ),
                    is("effects", Valid),
                    is(checker::expectation::VERDICT, Valid),
                ]
            },
            off: || {
                vec![with(
                    "effects",
                    Invalid,
                    "double charges",
                    "/violation_counts/double-charge",
                    1.0,
                )]
            },
        },
        Scenario {
            name: "retried-compensation",
            protection: "idempotency",
            about: "refuses 60% of shipments so that most sagas compensate; pauses shipping \
                    where the order leader runs so that charged sagas pile up waiting for their \
                    shipment, then drops the replies on the link from the order leader to the \
                    payment leader and resumes shipping: the piled-up sagas are refused \
                    shipment together and their refunds lose their replies (the refund \
                    happened), so every one of them is retried under its key",
            words: &[
                "--time-limit",
                "13s",
                "--shipping-failure-rate",
                "0.6",
                "--fault",
                SEPARATE_LEADERS,
                "--fault",
                PILE_UP_AT_SHIPPING,
                "--fault",
                "kind=lost-response,role=payment,links=leaders:order,at=7s,for=5s",
            ],
            off_words: &["--no-idempotency"],
            claim_on: "refund keys are presented more than once and each made one refund \
                       (idempotency check), compensated orders have exactly one refund (effects \
                       check), every check valid",
            claim_off: "without idempotency a retried refund is paid out again: the effects \
                        check is invalid with double refunds. (--no-compensation would show lost \
                        refunds whether or not a reply was lost; double refunds are the failure \
                        that retrying a compensation causes, so they prove \"refunded once\".)",
            on: || {
                vec![
                    with_items(
                        "idempotency",
                        Valid,
                        "refund keys presented more than once with one record",
                        "/repeated_keys",
                        &[("ledger", "payments"), ("key", ":refund")],
                        None,
                    ),
                    with(
                        "effects",
                        Valid,
                        "compensated orders",
                        "/by_status/compensated",
                        1.0,
                    ),
                    is(checker::expectation::VERDICT, Valid),
                ]
            },
            off: || {
                vec![with(
                    "effects",
                    Invalid,
                    "double refunds",
                    "/violation_counts/double-refund",
                    1.0,
                )]
            },
        },
        Scenario {
            name: "retry-storm",
            protection: "retry-budget",
            about: "slows every link into payment past the callers' 2 s timeout (the storm \
                    fault) while the workload's clients resend eagerly: every attempt times \
                    out, and only the retry budget keeps the retries bounded",
            words: &[
                "--time-limit",
                "12s",
                "--fault",
                SEPARATE_LEADERS,
                "--fault",
                "kind=storm,role=payment,latency=2500ms,at=5s,for=5s",
            ],
            off_words: &["--no-retry-budget"],
            claim_on: "the order leader's retries to payment stay within the budget in every \
                       window while the budget refuses some (retry-load check), every check \
                       valid",
            claim_off: "without the budget every attempt is retried: the retry-load check is \
                        invalid with windows over the budget",
            on: || {
                vec![
                    with_items(
                        "retry-load",
                        Valid,
                        "payment retries the budget refused",
                        "/per_downstream",
                        &[("downstream", "payment")],
                        Some("refused"),
                    ),
                    is(checker::expectation::VERDICT, Valid),
                ]
            },
            off: || {
                vec![with(
                    "retry-load",
                    Invalid,
                    "caller windows over the budget",
                    "/over_budget_total",
                    1.0,
                )]
            },
        },
    ]
}
