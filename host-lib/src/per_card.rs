//! The two cards of a mirrored volume by role, and one value for each card indexed by it.

use std::fmt;
use std::ops::{Index, IndexMut};

/// Which half of a mirrored volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardRole {
    Primary,
    Mirror,
}

impl CardRole {
    pub const BOTH: [CardRole; 2] = [CardRole::Primary, CardRole::Mirror];

    pub fn index(self) -> usize {
        match self {
            CardRole::Primary => 0,
            CardRole::Mirror => 1,
        }
    }

    pub fn other(self) -> CardRole {
        match self {
            CardRole::Primary => CardRole::Mirror,
            CardRole::Mirror => CardRole::Primary,
        }
    }
}

impl fmt::Display for CardRole {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            CardRole::Primary => "primary",
            CardRole::Mirror => "mirror",
        })
    }
}

/// A value for the primary and one for the mirror: `cards[CardRole::Mirror]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PerCard<T> {
    pub primary: T,
    pub mirror: T,
}

impl<T> PerCard<T> {
    pub fn new(primary: T, mirror: T) -> Self {
        Self { primary, mirror }
    }

    /// The same value for both cards.
    pub fn both(value: T) -> Self
    where
        T: Clone,
    {
        Self::new(value.clone(), value)
    }

    /// `make(role)` for each card, the primary first.
    pub fn from_fn(mut make: impl FnMut(CardRole) -> T) -> Self {
        let primary = make(CardRole::Primary);
        Self::new(primary, make(CardRole::Mirror))
    }

    /// `change(role, value)` of each card, the primary first.
    pub fn map<U>(self, mut change: impl FnMut(CardRole, T) -> U) -> PerCard<U> {
        let primary = change(CardRole::Primary, self.primary);
        PerCard::new(primary, change(CardRole::Mirror, self.mirror))
    }

    pub fn as_ref(&self) -> PerCard<&T> {
        PerCard::new(&self.primary, &self.mirror)
    }

    /// Each card's role and value, the primary first.
    pub fn iter(&self) -> impl Iterator<Item = (CardRole, &T)> {
        [
            (CardRole::Primary, &self.primary),
            (CardRole::Mirror, &self.mirror),
        ]
        .into_iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (CardRole, &mut T)> {
        [
            (CardRole::Primary, &mut self.primary),
            (CardRole::Mirror, &mut self.mirror),
        ]
        .into_iter()
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        [&self.primary, &self.mirror].into_iter()
    }
}

impl<T> Index<CardRole> for PerCard<T> {
    type Output = T;

    fn index(&self, role: CardRole) -> &T {
        match role {
            CardRole::Primary => &self.primary,
            CardRole::Mirror => &self.mirror,
        }
    }
}

impl<T> IndexMut<CardRole> for PerCard<T> {
    fn index_mut(&mut self, role: CardRole) -> &mut T {
        match role {
            CardRole::Primary => &mut self.primary,
            CardRole::Mirror => &mut self.mirror,
        }
    }
}

impl<T> IntoIterator for PerCard<T> {
    type Item = (CardRole, T);
    type IntoIter = std::array::IntoIter<(CardRole, T), 2>;

    fn into_iter(self) -> Self::IntoIter {
        [
            (CardRole::Primary, self.primary),
            (CardRole::Mirror, self.mirror),
        ]
        .into_iter()
    }
}
