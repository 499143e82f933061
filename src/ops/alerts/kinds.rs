//! The alerts srv-opr knows: their names, severities and labels, which regions a measure is
//! alerted on, and an alert's identity. Shared by the evaluator, the notifier, `/metrics` and
//! the generated Prometheus rules, so the two views of an alert never disagree.

use crate::engine::definitions::Definitions;
use crate::engine::domain::Region;

/// Regions as labels: the three and their sum.
pub(crate) const REGIONS: [&str; 4] = Region::LABELS;

/// Every alert the evaluator (and the generated rules) can raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// Month-to-date RPL below TPL.
    RplBelowTarget,
    /// Month-to-date RPL below MPL.
    RplBelowMinimum,
    /// The error budget burning fast (both fast-burn windows).
    ErrorBudgetFastBurn,
    /// The error budget burning steadily (both slow-burn windows).
    ErrorBudgetSlowBurn,
    /// A measure and region that had requests has none now.
    MeasureNoData,
    /// Messages waiting and none processed.
    ConsumerStalled,
    /// Events processed but the combined watermark unmoved.
    WatermarkStuck,
    /// Too many events dead-lettered.
    DeadLettersRising,
    /// The waiting-response cap dead-lettered responses early (SPEC §2).
    WaitingResponsesEvicted,
    /// A partition has messages waiting and its offset has not moved (whatever the others do).
    PartitionStalled,
    /// The consumer reports batches it cannot decode: their partitions are stuck at them.
    KafkaUndecodable,
    /// An interface down for longer than `alerts.interface_down_for` (issue 30).
    InterfaceDown,
    /// An interface's month-to-date availability below SUM1's TPL (issue 30).
    InterfaceBelowTarget,
    /// A signed month's figures differ from its latest sign-off (issue 31).
    SignedMonthRestated,
    /// No broker connection up: nothing is read, no figure moves (issue 33).
    KafkaUnreachable,
    /// The brokers refuse this client: its credentials (SASL) or its TLS (issue 33).
    KafkaRefused,
    /// The brokers answer and this instance holds no partition (issue 33).
    NoPartitionAssigned,
    /// The state store does not answer: checkpoints wait (issue 33).
    StoreUnreachable,
}

impl AlertKind {
    /// Every kind, in a fixed order.
    pub const ALL: [AlertKind; 18] = [
        AlertKind::RplBelowTarget,
        AlertKind::RplBelowMinimum,
        AlertKind::ErrorBudgetFastBurn,
        AlertKind::ErrorBudgetSlowBurn,
        AlertKind::MeasureNoData,
        AlertKind::ConsumerStalled,
        AlertKind::WatermarkStuck,
        AlertKind::DeadLettersRising,
        AlertKind::WaitingResponsesEvicted,
        AlertKind::PartitionStalled,
        AlertKind::KafkaUndecodable,
        AlertKind::InterfaceDown,
        AlertKind::InterfaceBelowTarget,
        AlertKind::SignedMonthRestated,
        AlertKind::KafkaUnreachable,
        AlertKind::KafkaRefused,
        AlertKind::NoPartitionAssigned,
        AlertKind::StoreUnreachable,
    ];

    /// The `alertname` (in Alertmanager and the rules) and the `alert` label of
    /// `srv_alert_active`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::RplBelowTarget => "SrvRplBelowTarget",
            AlertKind::RplBelowMinimum => "SrvRplBelowMinimum",
            AlertKind::ErrorBudgetFastBurn => "SrvErrorBudgetFastBurn",
            AlertKind::ErrorBudgetSlowBurn => "SrvErrorBudgetSlowBurn",
            AlertKind::MeasureNoData => "SrvMeasureNoData",
            AlertKind::ConsumerStalled => "SrvConsumerStalled",
            AlertKind::WatermarkStuck => "SrvWatermarkStuck",
            AlertKind::DeadLettersRising => "SrvDeadLettersRising",
            AlertKind::WaitingResponsesEvicted => "SrvWaitingResponsesEvicted",
            AlertKind::PartitionStalled => "SrvPartitionStalled",
            AlertKind::KafkaUndecodable => "SrvKafkaUndecodable",
            AlertKind::InterfaceDown => "SrvInterfaceDown",
            AlertKind::InterfaceBelowTarget => "SrvInterfaceBelowTarget",
            AlertKind::SignedMonthRestated => "SrvSignedMonthRestated",
            AlertKind::KafkaUnreachable => "SrvKafkaUnreachable",
            AlertKind::KafkaRefused => "SrvKafkaRefused",
            AlertKind::NoPartitionAssigned => "SrvNoPartitionAssigned",
            AlertKind::StoreUnreachable => "SrvStoreUnreachable",
        }
    }

    /// `warning` or `critical`.
    pub fn severity(self) -> &'static str {
        match self {
            AlertKind::RplBelowMinimum
            | AlertKind::ErrorBudgetFastBurn
            | AlertKind::ConsumerStalled
            | AlertKind::PartitionStalled
            | AlertKind::KafkaUndecodable
            | AlertKind::InterfaceDown
            | AlertKind::KafkaUnreachable
            | AlertKind::KafkaRefused
            | AlertKind::StoreUnreachable => "critical",
            _ => "warning",
        }
    }

    /// Whether it is about one measure and region (else about the pipeline).
    pub(crate) fn per_measure(self) -> bool {
        matches!(
            self,
            AlertKind::RplBelowTarget
                | AlertKind::RplBelowMinimum
                | AlertKind::ErrorBudgetFastBurn
                | AlertKind::ErrorBudgetSlowBurn
                | AlertKind::MeasureNoData
        )
    }
}

impl AlertKind {
    /// Whether it is about the pipeline's health (held for `alerts.health_for`, not `for`): the
    /// states in which figures stop moving, which the person on shift must see within a minute.
    pub(crate) fn is_health(self) -> bool {
        self.is_connection()
            || matches!(
                self,
                AlertKind::ConsumerStalled
                    | AlertKind::PartitionStalled
                    | AlertKind::KafkaUndecodable
            )
    }

    /// Whether it is about the connections (brokers, store, assignment): judged whether or not
    /// a partition is held, unlike the others, whose figures vanish with the partitions.
    pub(crate) fn is_connection(self) -> bool {
        matches!(
            self,
            AlertKind::KafkaUnreachable
                | AlertKind::KafkaRefused
                | AlertKind::NoPartitionAssigned
                | AlertKind::StoreUnreachable
        )
    }

    /// How long its condition holds before it fires: a stall's condition is already "nothing
    /// moved for `stall_window`", so it fires at once; the other health states after
    /// `health_for`; everything else after `for`.
    pub fn hold(self, a: &crate::config::settings::AlertSettings) -> crate::engine::time::Dur {
        match self {
            AlertKind::ConsumerStalled | AlertKind::PartitionStalled => crate::engine::time::Dur(0),
            k if k.is_health() => a.health_for,
            _ => a.hold,
        }
    }

    /// Whether it is about one interface (its index in the definitions is the key's second
    /// part; its `measure` label is `SUM1.<interface>`).
    pub(crate) fn per_interface(self) -> bool {
        matches!(
            self,
            AlertKind::InterfaceDown | AlertKind::InterfaceBelowTarget
        )
    }
}

/// The `measure` label of an alert: a measure's id, or `SUM1.<interface>` for an interface's.
pub(crate) fn measure_label(defs: &Definitions, key: &AlertKey) -> String {
    let (kind, m, _) = *key;
    if kind.per_interface() {
        m.and_then(|i| defs.interfaces.get(i))
            .map_or(String::new(), |x| format!("SUM1.{}", x.id))
    } else {
        m.and_then(|i| defs.measures.get(i))
            .map_or(String::new(), |x| x.id.clone())
    }
}

/// Which region labels a measure is alerted on: the three regions when it is scored per region,
/// else its pooled `all` row.
pub(crate) fn alert_regions(regional: bool) -> &'static [usize] {
    if regional { &[0, 1, 2] } else { &[3] }
}

/// One alert's identity: kind, measure index and region index (both `None` for the pipeline).
pub(crate) type AlertKey = (AlertKind, Option<usize>, Option<usize>);

/// The labels of an alert, as Alertmanager and `srv_alert_active` show them.
pub(crate) fn labels(defs: &Definitions, key: &AlertKey) -> Vec<(&'static str, String)> {
    let (kind, _, r) = *key;
    vec![
        ("alertname", kind.name().to_string()),
        ("severity", kind.severity().to_string()),
        ("measure", measure_label(defs, key)),
        (
            "region",
            r.and_then(|i| REGIONS.get(i)).map_or("", |v| v).to_string(),
        ),
        ("service", "srv-opr".to_string()),
    ]
}
