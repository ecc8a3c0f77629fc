//! Reading contracts from TOML, JSON and YAML with exact decimals and field
//! paths in every error. SKELETON.

use super::{AmendValue, Baseline, Charge};

impl<'de> serde::Deserialize<'de> for Baseline {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<Baseline, D::Error> {
        Err(serde::de::Error::custom("skeleton"))
    }
}

impl<'de> serde::Deserialize<'de> for Charge {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<Charge, D::Error> {
        Err(serde::de::Error::custom("skeleton"))
    }
}

impl<'de> serde::Deserialize<'de> for AmendValue {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<AmendValue, D::Error> {
        Err(serde::de::Error::custom("skeleton"))
    }
}
