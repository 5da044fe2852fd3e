//! Houston-style generated release names: `adjective-noun-NNNN`.

use super::ReleaseName;
use rand::Rng;

const ADJECTIVES: [&str; 32] = [
    "ancient",
    "binary",
    "bright",
    "celestial",
    "cosmic",
    "crimson",
    "dark",
    "distant",
    "eccentric",
    "elliptical",
    "galactic",
    "gaseous",
    "geodetic",
    "giant",
    "glowing",
    "gravitational",
    "infrared",
    "interstellar",
    "ionized",
    "lunar",
    "luminous",
    "magnetic",
    "meteoric",
    "nebular",
    "orbital",
    "planetary",
    "polar",
    "quantum",
    "radiant",
    "sidereal",
    "solar",
    "spectral",
];

const NOUNS: [&str; 32] = [
    "aphelion",
    "asteroid",
    "atmosphere",
    "aurora",
    "comet",
    "constellation",
    "corona",
    "cosmos",
    "crater",
    "eclipse",
    "equinox",
    "galaxy",
    "horizon",
    "kuiper",
    "meteor",
    "moon",
    "nebula",
    "nova",
    "orbit",
    "parallax",
    "perihelion",
    "photon",
    "planet",
    "pulsar",
    "quasar",
    "satellite",
    "singularity",
    "solstice",
    "star",
    "supernova",
    "telescope",
    "zenith",
];

/// A fresh random release name; collisions are rare and the store's unique
/// index catches them, so callers retry rather than check first.
pub fn generate(rng: &mut impl Rng) -> ReleaseName {
    let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let noun = NOUNS[rng.random_range(0..NOUNS.len())];
    let number: u16 = rng.random_range(0..10_000);
    let name = format!("{adjective}-{noun}-{number:04}");
    // Every combination of the constants above is a valid release name (a test checks).
    ReleaseName::parse(&name).unwrap_or_else(|_| unreachable!("generated release name {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_makes_a_valid_release_name() {
        for adjective in ADJECTIVES {
            for noun in NOUNS {
                let name = format!("{adjective}-{noun}-0000");
                assert!(ReleaseName::parse(&name).is_ok(), "{name}");
            }
        }
    }

    #[test]
    fn generated_names_have_the_houston_shape() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let name = generate(&mut rng);
            let parts: Vec<&str> = name.as_str().split('-').collect();
            assert_eq!(parts.len(), 3, "{name}");
            assert!(ADJECTIVES.contains(&parts[0]));
            assert!(NOUNS.contains(&parts[1]));
            assert_eq!(parts[2].len(), 4);
            assert!(parts[2].bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
