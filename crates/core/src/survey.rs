//! The customer surveys a resolved conversation can be asked: CSAT, NPS and CES, each with its
//! scale, the event an answer is stored as and that answer's de-duplication id.

use std::ops::RangeInclusive;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::EventKind;

/// A survey kind; its name (`csat`, `nps`, `ces`) is what metadata, events and config carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SurveyKind {
    /// Customer satisfaction, 1 (poor) to 5 (great).
    Csat,
    /// Net Promoter Score: how likely the customer recommends us, 0 to 10.
    Nps,
    /// Customer Effort Score: how easy it was, 1 (very difficult) to 7 (very easy).
    Ces,
}

impl SurveyKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [SurveyKind; 3] = [SurveyKind::Csat, SurveyKind::Nps, SurveyKind::Ces];

    /// The scores a customer can give.
    pub fn scale(self) -> RangeInclusive<u8> {
        match self {
            SurveyKind::Csat => 1..=5,
            SurveyKind::Nps => 0..=10,
            SurveyKind::Ces => 1..=7,
        }
    }

    /// Its name: `csat`, `nps` or `ces`.
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::Csat => "csat",
            SurveyKind::Nps => "nps",
            SurveyKind::Ces => "ces",
        }
    }

    /// The kind named `name` (exactly as [`SurveyKind::as_str`] writes it).
    pub fn parse(name: &str) -> Option<SurveyKind> {
        SurveyKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The event an answer is stored as (`csat_received`, `nps_received`, `ces_received`).
    pub fn event_kind(self) -> EventKind {
        match self {
            SurveyKind::Csat => EventKind::CsatReceived,
            SurveyKind::Nps => EventKind::NpsReceived,
            SurveyKind::Ces => EventKind::CesReceived,
        }
    }

    /// The survey whose answer `kind` is, if it is one.
    pub fn of_event(kind: EventKind) -> Option<SurveyKind> {
        SurveyKind::ALL.into_iter().find(|k| k.event_kind() == kind)
    }

    /// The de-duplication id of a conversation's answer, `<kind>:<conversation>`: only the first
    /// answer to a survey counts, whatever channel or button a second one comes by.
    pub fn msg_id(self, conversation: Uuid) -> String {
        format!("{}:{conversation}", self.as_str())
    }

    /// The survey an outbound message's `metadata` asks, if it is a survey question:
    /// `metadata.survey`, or, from a router before NPS and CES, `metadata.csat = "request"`.
    pub fn of_question(metadata: &std::collections::BTreeMap<String, String>) -> Option<SurveyKind> {
        use crate::contract::metadata as keys;
        match metadata.get(keys::SURVEY) {
            Some(kind) => SurveyKind::parse(kind),
            None => {
                (metadata.get(keys::CSAT).map(String::as_str) == Some(keys::CSAT_REQUEST)).then_some(SurveyKind::Csat)
            }
        }
    }

    /// Checks a score against the scale; the error says what the scale is.
    pub fn check(self, score: i64) -> Result<u8, String> {
        let scale = self.scale();
        u8::try_from(score).ok().filter(|s| scale.contains(s)).ok_or_else(|| {
            format!("{} is not on the {} scale ({} to {})", score, self.as_str(), scale.start(), scale.end())
        })
    }
}

impl std::fmt::Display for SurveyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_names_events_and_ids() {
        assert_eq!(SurveyKind::Csat.scale(), 1..=5);
        assert_eq!(SurveyKind::Nps.scale(), 0..=10);
        assert_eq!(SurveyKind::Ces.scale(), 1..=7);
        for k in SurveyKind::ALL {
            assert_eq!(SurveyKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
            assert_eq!(SurveyKind::of_event(k.event_kind()), Some(k));
        }
        assert_eq!(SurveyKind::parse("NPS"), None);
        assert_eq!(SurveyKind::of_event(EventKind::Resolved), None);
        assert_eq!(SurveyKind::Nps.event_kind().as_str(), "nps_received");
        assert_eq!(SurveyKind::Ces.event_kind().as_str(), "ces_received");
        let c = Uuid::from_u128(7);
        assert_eq!(SurveyKind::Nps.msg_id(c), format!("nps:{c}"));
        assert_eq!(SurveyKind::Csat.msg_id(c), format!("csat:{c}"));
        assert_eq!(SurveyKind::Nps.check(0), Ok(0));
        assert_eq!(SurveyKind::Nps.check(10), Ok(10));
        assert_eq!(SurveyKind::Nps.check(11).unwrap_err(), "11 is not on the nps scale (0 to 10)");
        assert!(SurveyKind::Csat.check(0).is_err());
        assert!(SurveyKind::Ces.check(8).is_err());
        assert!(SurveyKind::Ces.check(-1).is_err());
        assert_eq!(SurveyKind::Ces.check(7), Ok(7));
        let meta = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(SurveyKind::of_question(&meta(&[("survey", "nps")])), Some(SurveyKind::Nps));
        assert_eq!(SurveyKind::of_question(&meta(&[("csat", "request")])), Some(SurveyKind::Csat), "an older router");
        assert_eq!(SurveyKind::of_question(&meta(&[("agent_name", "Ann")])), None);
        assert_eq!(SurveyKind::of_question(&meta(&[("survey", "stars")])), None);
    }
}
