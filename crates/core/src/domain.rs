//! Routing vocabulary shared by the contract: tiers, priorities, skills, agent status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Support tier: L0 self-service/bot up to L4 third parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Tier {
    /// Self-service and bot.
    L0,
    /// Generalists solving common problems fast.
    L1,
    /// Specialists for complex diagnosis.
    L2,
    /// Engineers and experts.
    L3,
    /// Third parties: vendors, field crews.
    L4,
}

/// Priority from 1 (most urgent) to 100; P1-P4 are 1, 25, 50 and 75.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Priority(#[schemars(range(min = 1, max = 100))] pub u8);

impl Priority {
    /// Urgent.
    pub const P1: Priority = Priority(1);
    /// High.
    pub const P2: Priority = Priority(25);
    /// Normal.
    pub const P3: Priority = Priority(50);
    /// Low.
    pub const P4: Priority = Priority(75);

    /// Checks the 1..=100 range.
    pub fn validate(self, field: &str) -> Result<(), ValidationError> {
        if !(1..=100).contains(&self.0) {
            return Err(ValidationError::new(field, format!("must be between 1 and 100, got {}", self.0)));
        }
        Ok(())
    }
}

/// A required skill with its minimum proficiency level (1-5), e.g. `billing` at 3.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillRequirement {
    /// Skill name, e.g. `billing` or `lang-ru`.
    pub skill: String,
    /// Minimum level, 1-5.
    #[schemars(range(min = 1, max = 5))]
    pub min_level: u8,
}

/// An agent's availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Takes offers.
    Online,
    /// Logged in but takes no new offers.
    Away,
    /// Not working.
    Offline,
}
