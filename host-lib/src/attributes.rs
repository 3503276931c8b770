//! The attribute cache of seed 001 \[0096\]-\[0099\]: a region's attributes as the metadata held
//! them when they were read, looked up by name with an accessor of the attribute's type.

use crate::error::Error;
use crate::metadata::RegionRecord;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    U32(u32),
    U64(u64),
    String(String),
}

impl AttributeValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::U32(_) => "u32",
            AttributeValue::U64(_) => "u64",
            AttributeValue::String(_) => "string",
        }
    }
}

/// A snapshot of one region's attributes; later changes show only in a new read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes {
    values: Vec<(&'static str, AttributeValue)>,
}

impl Attributes {
    pub(crate) fn of(region: &RegionRecord, open_handles: u32) -> Self {
        use AttributeValue::*;
        Self {
            values: vec![
                ("name", String(region.name.clone())),
                ("size", U64(region.size)),
                ("base_pointer", U64(region.base_pointer)),
                ("owner", U32(region.owner)),
                ("creation_time", U64(region.created)),
                ("last_open_time", U64(region.last_opened)),
                ("pages", U64(region.pages())),
                ("extents", U32(region.extents.len() as u32)),
                ("open_handles", U32(open_handles)),
            ],
        }
    }

    /// Every attribute with its value, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &AttributeValue)> {
        self.values.iter().map(|(name, value)| (*name, value))
    }

    pub fn get(&self, name: &str) -> Result<&AttributeValue, Error> {
        self.values
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| value)
            .ok_or_else(|| Error::NoSuchAttribute(name.to_owned()))
    }

    pub fn get_u64(&self, name: &str) -> Result<u64, Error> {
        match self.get(name)? {
            AttributeValue::U64(value) => Ok(*value),
            other => Err(wrong_type(name, other, "u64")),
        }
    }

    pub fn get_u32(&self, name: &str) -> Result<u32, Error> {
        match self.get(name)? {
            AttributeValue::U32(value) => Ok(*value),
            other => Err(wrong_type(name, other, "u32")),
        }
    }

    pub fn get_string(&self, name: &str) -> Result<&str, Error> {
        match self.get(name)? {
            AttributeValue::String(value) => Ok(value),
            other => Err(wrong_type(name, other, "string")),
        }
    }

    /// Copies a string attribute into `buffer` and returns its length. If it does not fit,
    /// the first `buffer.len()` bytes are copied and [`Error::BufferTooSmall`] returned, as
    /// seed 001 \[0098\] has it.
    pub fn copy_string(&self, name: &str, buffer: &mut [u8]) -> Result<usize, Error> {
        let value = self.get_string(name)?.as_bytes();
        let fits = value.len().min(buffer.len());
        buffer[..fits].copy_from_slice(&value[..fits]);
        if fits < value.len() {
            return Err(Error::BufferTooSmall {
                name: name.to_owned(),
                needed: value.len(),
                capacity: buffer.len(),
            });
        }
        Ok(value.len())
    }
}

fn wrong_type(name: &str, actual: &AttributeValue, asked: &'static str) -> Error {
    Error::WrongAttributeType {
        name: name.to_owned(),
        actual: actual.type_name(),
        asked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Extent;

    fn attributes() -> Attributes {
        let region = RegionRecord {
            name: "journal".into(),
            size: 5000,
            base_pointer: 0x1000_0000,
            owner: 1000,
            created: 11,
            last_opened: 12,
            extents: vec![Extent { first: 8, pages: 1 }, Extent { first: 3, pages: 1 }],
        };
        Attributes::of(&region, 2)
    }

    #[test]
    fn each_attribute_reads_with_its_own_type() {
        let attributes = attributes();
        assert_eq!(attributes.get_string("name").unwrap(), "journal");
        assert_eq!(attributes.get_u64("size").unwrap(), 5000);
        assert_eq!(attributes.get_u64("base_pointer").unwrap(), 0x1000_0000);
        assert_eq!(attributes.get_u32("owner").unwrap(), 1000);
        assert_eq!(attributes.get_u64("creation_time").unwrap(), 11);
        assert_eq!(attributes.get_u64("last_open_time").unwrap(), 12);
        assert_eq!(attributes.get_u64("pages").unwrap(), 2);
        assert_eq!(attributes.get_u32("extents").unwrap(), 2);
        assert_eq!(attributes.get_u32("open_handles").unwrap(), 2);
    }

    #[test]
    fn the_wrong_accessor_or_name_is_an_error() {
        let attributes = attributes();
        assert!(matches!(
            attributes.get_u32("size"),
            Err(Error::WrongAttributeType {
                actual: "u64",
                asked: "u32",
                ..
            })
        ));
        assert!(matches!(
            attributes.get_u64("name"),
            Err(Error::WrongAttributeType { .. })
        ));
        assert!(matches!(
            attributes.get_string("owner"),
            Err(Error::WrongAttributeType { .. })
        ));
        assert!(matches!(
            attributes.get_u64("colour"),
            Err(Error::NoSuchAttribute(_))
        ));
    }

    #[test]
    fn a_short_buffer_gets_the_first_bytes_and_an_error() {
        let attributes = attributes();
        let mut short = [0u8; 4];
        assert!(matches!(
            attributes.copy_string("name", &mut short),
            Err(Error::BufferTooSmall {
                needed: 7,
                capacity: 4,
                ..
            })
        ));
        assert_eq!(&short, b"jour");
        let mut enough = [0u8; 7];
        assert_eq!(attributes.copy_string("name", &mut enough).unwrap(), 7);
        assert_eq!(&enough, b"journal");
    }
}
