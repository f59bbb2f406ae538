//! How strongly a series is denoised: the share of the network's change that is kept.
//!
//! A derived series is `input + strength × (network − input)`, voxel by voxel, in the
//! network's normalised units (the normalisation is linear, so SUV follows). Strength 1 is
//! the network's output; lower strengths give back part of the input's noise and, with it,
//! part of the contrast that the network takes from the smallest hot spots. Means over any
//! region move linearly, so a region's recovery at strength `s` is `s × network + (1 − s) ×
//! input`. Two names are offered, as clinical products do; any number in (0, 1] works too.
//!
//! ```
//! use petal::domain::DenoiseStrength;
//!
//! let standard: DenoiseStrength = "standard".parse().unwrap();
//! assert_eq!(standard.value(), 1.0);
//! let custom: DenoiseStrength = "0.5".parse().unwrap();
//! assert_eq!(custom.blend(2.0, 1.0), 1.5);
//! assert!("1.5".parse::<DenoiseStrength>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

/// The share of the network's change kept, in (0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenoiseStrength(f64);

impl DenoiseStrength {
    /// The network's output as it is: the default.
    pub const STANDARD: DenoiseStrength = DenoiseStrength(1.0);
    /// Keeps more of the smallest lesions' contrast, at the price of more noise
    /// (docs/results/nema.md has what each strength measured).
    pub const LESION_PRESERVING: DenoiseStrength = DenoiseStrength(0.7);

    /// The named strengths, in the order they are listed to users.
    const NAMED: [(&'static str, DenoiseStrength); 2] =
        [("standard", Self::STANDARD), ("lesion-preserving", Self::LESION_PRESERVING)];

    pub fn new(value: f64) -> Result<Self, StrengthError> {
        if value.is_finite() && value > 0.0 && value <= 1.0 {
            Ok(Self(value))
        } else {
            Err(StrengthError(value.to_string()))
        }
    }

    pub fn value(self) -> f64 {
        self.0
    }

    /// The strength's name, if it has one.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMED.iter().find(|(_, strength)| *strength == self).map(|(name, _)| *name)
    }

    /// One voxel of the derived series from the input's and the network's value.
    pub fn blend(self, input: f32, network: f32) -> f32 {
        if self.0 == 1.0 { network } else { input + self.0 as f32 * (network - input) }
    }

    /// Blends a whole image in place: `network` becomes the derived values.
    pub fn blend_into(self, input: &[f32], network: &mut [f32]) {
        if self.0 != 1.0 {
            for (output, input) in network.iter_mut().zip(input) {
                *output = self.blend(*input, *output);
            }
        }
    }
}

impl Default for DenoiseStrength {
    fn default() -> Self {
        Self::STANDARD
    }
}

/// `standard`, `lesion-preserving`, or the number (two decimals) of any other strength.
impl fmt::Display for DenoiseStrength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:.2}", self.0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "unknown denoising strength `{0}`: expected standard, lesion-preserving, or a number greater than 0 and at most 1"
)]
pub struct StrengthError(String);

impl FromStr for DenoiseStrength {
    type Err = StrengthError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Some((_, strength)) = Self::NAMED.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)) {
            return Ok(*strength);
        }
        let value: f64 = text.parse().map_err(|_| StrengthError(text.to_owned()))?;
        Self::new(value).map_err(|_| StrengthError(text.to_owned()))
    }
}

impl serde::Serialize for DenoiseStrength {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read from a name or a number, as a string or a JSON number.
impl<'de> serde::Deserialize<'de> for DenoiseStrength {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Number(f64),
        }
        match Written::deserialize(deserializer)? {
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Written::Number(value) => DenoiseStrength::new(value).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_parse_and_print_back() {
        assert_eq!("standard".parse::<DenoiseStrength>(), Ok(DenoiseStrength::STANDARD));
        assert_eq!("Lesion-Preserving".parse::<DenoiseStrength>(), Ok(DenoiseStrength::LESION_PRESERVING));
        assert_eq!("1".parse::<DenoiseStrength>(), Ok(DenoiseStrength::STANDARD));
        let half: DenoiseStrength = "0.5".parse().expect("0.5");
        assert_eq!(half.to_string(), "0.50");
        assert_eq!(DenoiseStrength::LESION_PRESERVING.to_string(), "lesion-preserving");
        for refused in ["0", "-0.2", "1.01", "NaN", "strong", ""] {
            let error = refused.parse::<DenoiseStrength>().expect_err(refused);
            assert!(error.to_string().contains("lesion-preserving"), "{error}");
        }
    }

    #[test]
    fn blending_keeps_the_given_share_of_the_networks_change() {
        let input = [1.0, 2.0, 4.0];
        let mut output = [2.0, 2.0, 0.0];
        DenoiseStrength::new(0.25).expect("0.25").blend_into(&input, &mut output);
        assert_eq!(output, [1.25, 2.0, 3.0]);
        let mut unchanged = [2.0, 2.0, 0.0];
        DenoiseStrength::STANDARD.blend_into(&input, &mut unchanged);
        assert_eq!(unchanged, [2.0, 2.0, 0.0]);
    }

    #[test]
    fn json_takes_a_name_or_a_number() {
        let named: DenoiseStrength = serde_json::from_str("\"lesion-preserving\"").expect("a name");
        assert_eq!(named, DenoiseStrength::LESION_PRESERVING);
        let number: DenoiseStrength = serde_json::from_str("0.8").expect("a number");
        assert_eq!(number.value(), 0.8);
        assert!(serde_json::from_str::<DenoiseStrength>("2").is_err());
        assert_eq!(serde_json::to_string(&number).expect("JSON"), "\"0.80\"");
    }
}
