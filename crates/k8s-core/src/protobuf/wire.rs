//! Protobuf wire reading over a borrowed slice: every read is bounds-checked and returns
//! [`ProtobufError`] instead of panicking, because the bytes come straight from the client.

use super::ProtobufError;

/// The wire types Kubernetes messages use (groups, 3 and 4, are rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint = 0,
    Fixed64 = 1,
    Len = 2,
    Fixed32 = 5,
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(ProtobufError::Truncated)?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(ProtobufError::VarintOverflow);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::VarintOverflow)
    }

    /// The next field key, or `None` at the end of the message.
    pub(crate) fn key(&mut self) -> Result<Option<(u32, WireType)>, ProtobufError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wt = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            other => return Err(ProtobufError::IllegalWireType(other as u8)),
        };
        let tag = u32::try_from(key >> 3).map_err(|_| ProtobufError::VarintOverflow)?;
        if tag == 0 {
            return Err(ProtobufError::IllegalWireType(wt as u8));
        }
        Ok(Some((tag, wt)))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        if n > self.buf.len() {
            return Err(ProtobufError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A length-delimited payload.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], ProtobufError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| ProtobufError::Truncated)?;
        self.take(len)
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn skip(&mut self, wt: WireType) -> Result<(), ProtobufError> {
        match wt {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.take(8).map(drop),
            WireType::Len => self.bytes().map(drop),
            WireType::Fixed32 => self.take(4).map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(Reader::new(&[0x96, 0x01]).varint(), Ok(150));
        assert_eq!(Reader::new(&[0x80]).varint(), Err(ProtobufError::Truncated));
        assert_eq!(
            Reader::new(&[0xff; 11]).varint(),
            Err(ProtobufError::VarintOverflow)
        );
        // -1 as int32 on the wire: ten bytes.
        let mut neg = vec![0xff; 9];
        neg.push(0x01);
        assert_eq!(Reader::new(&neg).varint(), Ok(u64::MAX));
    }

    #[test]
    fn lengths_past_the_end_fail() {
        assert_eq!(
            Reader::new(&[0x05, 1, 2]).bytes(),
            Err(ProtobufError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).bytes(),
            Err(ProtobufError::Truncated)
        );
    }

    #[test]
    fn keys() {
        assert_eq!(Reader::new(&[0x0a]).key(), Ok(Some((1, WireType::Len))));
        assert_eq!(
            Reader::new(&[0x0b]).key(),
            Err(ProtobufError::IllegalWireType(3))
        );
        assert_eq!(Reader::new(&[]).key(), Ok(None));
        assert!(Reader::new(&[0x02]).key().is_err());
    }
}
