//! `FrameHeader::parse` on arbitrary bytes; a parsed header must re-encode (minimally) and
//! re-parse to itself, and every shorter prefix of a complete header must ask for more input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncws_protocol::frame::{FrameHeader, MAX_HEADER_LEN};
use syncws_protocol::ProtocolError;

fuzz_target!(|data: &[u8]| {
    match FrameHeader::parse(data) {
        Ok(None) => assert!(data.len() < MAX_HEADER_LEN),
        Err(e) => {
            assert!(matches!(
                e,
                ProtocolError::ReservedOpcode(_) | ProtocolError::InvalidLength
            ));
            assert_eq!(e.close_code().0, 1002);
        }
        Ok(Some((h, n))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&n) && n <= data.len());
            assert!(h.payload_len < 1 << 63);
            assert!(
                n >= h.encoded_len(),
                "parsed {n} bytes, minimal form is {}",
                h.encoded_len()
            );
            for short in 0..n {
                assert_eq!(FrameHeader::parse(&data[..short]), Ok(None), "prefix {short}");
            }
            let mut buf = [0u8; MAX_HEADER_LEN];
            let m = h.encode(&mut buf);
            assert_eq!(m, h.encoded_len());
            assert_eq!(FrameHeader::parse(&buf[..m]), Ok(Some((h, m))));
            let mut v = Vec::new();
            h.encode_to_vec(&mut v);
            assert_eq!(v, &buf[..m]);
            // A minimal encoding in the input comes back byte for byte.
            if n == m {
                assert_eq!(&data[..n], &buf[..m]);
            }
        }
    }
});
