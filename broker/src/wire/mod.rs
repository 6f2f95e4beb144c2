//! Kafka's byte format of coordinator records: the readers, writers and
//! errors shared by the `__consumer_offsets` and `__transaction_state` codecs.
//!
//! A record is `int16 version` + a struct. Non-flexible versions use `int16`
//! string lengths and `int32` byte and array lengths, -1 for null. Flexible
//! versions use compact lengths (`uvarint(len + 1)`, 0 for null) and end
//! every struct, nested ones included, with a tagged-field section: a
//! `uvarint` count, then per field a `uvarint` tag, a `uvarint` size and the
//! data. The `Reader` checks each length against the remaining input before
//! taking or allocating anything, so a hostile length is an error, never a
//! large allocation.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a coordinator record key or value could not be decoded.
///
/// The `&'static str` of each variant names the field or record concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The input ends inside a field, or a length prefix claims more than remains: (field, needed, remaining).
    #[error("{0}: needs {1} bytes but {2} remain")]
    Truncated(&'static str, usize, usize),
    /// A length prefix is negative and not the null marker -1: (field, length).
    #[error("{0}: negative length {1}")]
    NegativeLength(&'static str, i64),
    /// A field that Kafka declares non-nullable is null.
    #[error("{0} is null but is not nullable")]
    UnexpectedNull(&'static str),
    /// A string field is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// An unsigned varint runs past five bytes.
    #[error("{0}: unsigned varint longer than 5 bytes")]
    VarintTooLong(&'static str),
    /// A field holds a value its type does not define (an unknown enum code, a known tag of the wrong size): (field, value).
    #[error("{0}: invalid value {1}")]
    InvalidValue(&'static str, i64),
    /// The key version names a record type the decoder does not read.
    #[error("key version {0} is not a record type this decoder reads")]
    UnknownKeyVersion(i16),
    /// The value version is not one Kafka defines for this record: (record, version).
    #[error("{0}: unknown value version {1}")]
    UnknownValueVersion(&'static str, i16),
    /// Bytes remain after the last field of a known version: (record, count).
    #[error("{0}: {1} trailing bytes")]
    TrailingBytes(&'static str, usize),
}

impl RecordError {
    /// True when the key is of a record type a loader skips (Kafka's `UnknownRecordTypeException`).
    pub fn is_unknown_record_type(&self) -> bool {
        matches!(self, RecordError::UnknownKeyVersion(_))
    }
}

/// Writes a record's fields after its version, in plain or flexible forms.
pub(crate) struct Writer {
    /// The record so far.
    pub(crate) out: BytesMut,
    /// Whether the version being written is flexible.
    pub(crate) flexible: bool,
}

impl Writer {
    /// Starts a record of `version`.
    pub(crate) fn new(version: i16, flexible: bool) -> Writer {
        let mut out = BytesMut::new();
        out.put_i16(version);
        Writer { out, flexible }
    }

    /// A string; `None` is null. Panics past `i16::MAX` bytes, which no Kafka request carries.
    pub(crate) fn string(&mut self, value: Option<&str>) {
        if self.flexible {
            self.compact_length(value.map(str::len));
        } else {
            let length = value.map_or(-1, |s| {
                i16::try_from(s.len()).expect("record string longer than i16::MAX bytes")
            });
            self.out.put_i16(length);
        }
        if let Some(s) = value {
            self.out.put_slice(s.as_bytes());
        }
    }

    /// A non-null byte string.
    pub(crate) fn bytes(&mut self, value: &[u8]) {
        if self.flexible {
            self.compact_length(Some(value.len()));
        } else {
            let length = i32::try_from(value.len()).expect("record bytes longer than i32::MAX");
            self.out.put_i32(length);
        }
        self.out.put_slice(value);
    }

    /// The element count of a non-null array.
    pub(crate) fn array_len(&mut self, count: usize) {
        self.nullable_array_len(Some(count));
    }

    /// The element count of an array; `None` is null.
    pub(crate) fn nullable_array_len(&mut self, count: Option<usize>) {
        if self.flexible {
            self.compact_length(count);
        } else {
            let count = count.map_or(-1, |n| {
                i32::try_from(n).expect("record array longer than i32::MAX")
            });
            self.out.put_i32(count);
        }
    }

    /// A non-null `[]int32` array.
    pub(crate) fn i32_array(&mut self, values: &[i32]) {
        self.array_len(values.len());
        for &value in values {
            self.out.put_i32(value);
        }
    }

    /// A compact length: `uvarint(len + 1)`, 0 for null.
    pub(crate) fn compact_length(&mut self, length: Option<usize>) {
        let encoded = length.map_or(0, |n| n + 1);
        self.uvarint(u32::try_from(encoded).expect("compact length past u32::MAX"));
    }

    /// An unsigned varint, as Kafka's `writeUnsignedVarint`.
    pub(crate) fn uvarint(&mut self, mut value: u32) {
        while value >= 0x80 {
            self.out.put_u8((value & 0x7f) as u8 | 0x80);
            value >>= 7;
        }
        self.out.put_u8(value as u8);
    }

    /// An empty tagged-field section, in flexible versions only.
    pub(crate) fn tagged_fields(&mut self) {
        self.tagged_fields_with(&[]);
    }

    /// A tagged-field section of `(tag, data)` fields, in ascending tag order as Kafka writes them;
    /// in flexible versions only (non-flexible versions have no section, and `fields` must be empty).
    pub(crate) fn tagged_fields_with(&mut self, fields: &[(u32, &[u8])]) {
        if !self.flexible {
            debug_assert!(fields.is_empty(), "tagged fields in a non-flexible version");
            return;
        }
        debug_assert!(
            fields.windows(2).all(|w| w[0].0 < w[1].0),
            "tags out of order"
        );
        self.uvarint(u32::try_from(fields.len()).expect("tagged fields past u32::MAX"));
        for &(tag, data) in fields {
            self.uvarint(tag);
            self.uvarint(u32::try_from(data.len()).expect("tagged field past u32::MAX"));
            self.out.put_slice(data);
        }
    }

    /// The finished record.
    pub(crate) fn finish(self) -> Bytes {
        self.out.freeze()
    }
}

/// Reads fields from untrusted input, checking every length first.
pub(crate) struct Reader<'a> {
    /// The input not yet read.
    pub(crate) input: &'a [u8],
    /// Whether the version being read is flexible.
    pub(crate) flexible: bool,
}

impl<'a> Reader<'a> {
    /// Starts reading `input` in the non-flexible form.
    pub(crate) fn new(input: &'a [u8]) -> Reader<'a> {
        Reader {
            input,
            flexible: false,
        }
    }

    /// Takes `needed` bytes, checked against what remains before any use.
    pub(crate) fn take(
        &mut self,
        needed: usize,
        field: &'static str,
    ) -> Result<&'a [u8], RecordError> {
        if needed > self.input.len() {
            return Err(RecordError::Truncated(field, needed, self.input.len()));
        }
        let (head, tail) = self.input.split_at(needed);
        self.input = tail;
        Ok(head)
    }

    /// An `uint8`.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, RecordError> {
        Ok(self.take(1, field)?.get_u8())
    }

    /// An `int8`.
    pub(crate) fn i8(&mut self, field: &'static str) -> Result<i8, RecordError> {
        Ok(self.take(1, field)?.get_i8())
    }

    /// An `int16`.
    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        Ok(self.take(2, field)?.get_i16())
    }

    /// An `int32`.
    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        Ok(self.take(4, field)?.get_i32())
    }

    /// An `int64`.
    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(self.take(8, field)?.get_i64())
    }

    /// An unsigned varint of at most 5 bytes, as Kafka's `readUnsignedVarint`.
    pub(crate) fn uvarint(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = self.u8(field)?;
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::VarintTooLong(field))
    }

    /// A length prefix (`int32` if `wide`, else `int16`; compact when flexible); `None` is null.
    pub(crate) fn length(
        &mut self,
        field: &'static str,
        wide: bool,
    ) -> Result<Option<usize>, RecordError> {
        let length = if self.flexible {
            i64::from(self.uvarint(field)?) - 1
        } else if wide {
            i64::from(self.i32(field)?)
        } else {
            i64::from(self.i16(field)?)
        };
        match length {
            -1 => Ok(None),
            l if l < 0 => Err(RecordError::NegativeLength(field, l)),
            l => Ok(Some(usize::try_from(l).unwrap_or(usize::MAX))),
        }
    }

    /// A nullable string.
    pub(crate) fn nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, RecordError> {
        let Some(length) = self.length(field, false)? else {
            return Ok(None);
        };
        let raw = self.take(length, field)?;
        let text = std::str::from_utf8(raw).map_err(|_| RecordError::InvalidUtf8(field))?;
        Ok(Some(text.to_owned()))
    }

    /// A non-nullable string.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.nullable_string(field)?
            .ok_or(RecordError::UnexpectedNull(field))
    }

    /// A non-nullable byte string.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<Bytes, RecordError> {
        let length = self
            .length(field, true)?
            .ok_or(RecordError::UnexpectedNull(field))?;
        Ok(Bytes::copy_from_slice(self.take(length, field)?))
    }

    /// A non-nullable `[]int32` array.
    pub(crate) fn i32_array(&mut self, field: &'static str) -> Result<Vec<i32>, RecordError> {
        let count = self
            .length(field, true)?
            .ok_or(RecordError::UnexpectedNull(field))?;
        // No capacity from `count`: each element consumes input or fails, so
        // the vector grows only with what the input really holds.
        let mut values = Vec::new();
        for _ in 0..count {
            values.push(self.i32(field)?);
        }
        Ok(values)
    }

    /// Skips a tagged-field section (flexible versions only); no tag is known here.
    pub(crate) fn tagged_fields(&mut self) -> Result<(), RecordError> {
        self.tagged_fields_with(|_, _| Ok(()))
    }

    /// Reads a tagged-field section (flexible versions only), handing each field's tag and data
    /// to `field`, which skips the tags it does not know by returning `Ok`.
    pub(crate) fn tagged_fields_with(
        &mut self,
        mut field: impl FnMut(u32, &'a [u8]) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint("tagged field count")?;
        for _ in 0..count {
            let tag = self.uvarint("tagged field tag")?;
            let size = self.uvarint("tagged field size")?;
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            let data = self.take(size, "tagged field")?;
            field(tag, data)?;
        }
        Ok(())
    }

    /// Ends a record: no bytes may remain.
    pub(crate) fn finish(&self, record: &'static str) -> Result<(), RecordError> {
        match self.input.len() {
            0 => Ok(()),
            count => Err(RecordError::TrailingBytes(record, count)),
        }
    }
}

/// Helpers for the record codecs' tests.
#[cfg(test)]
pub(crate) mod testing {
    /// Concatenates hand-written fields into one record.
    pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Asserts that the whole input decodes and that every proper prefix fails.
    pub(crate) fn assert_prefixes_fail<T, E>(input: &[u8], decode: fn(&[u8]) -> Result<T, E>) {
        assert!(decode(input).is_ok());
        for length in 0..input.len() {
            assert!(decode(&input[..length]).is_err(), "prefix {length} decoded");
        }
    }
}
