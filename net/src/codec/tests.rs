//! Codec tests: round trips through kafka-protocol's client side, hostile and mutated input.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, MetadataRequest,
    MetadataResponse, ProduceRequest, RequestHeader as WireRequestHeader, RequestKind,
    ResponseHeader, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::frame::{FrameDecoder, DEFAULT_MAX_FRAME_BYTES};
use crate::header::parse_request;

/// A request frame (without size prefix) as a Kafka client would send it.
fn request_frame<R: Encodable + HeaderVersion>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &R,
) -> BytesMut {
    let mut frame = BytesMut::new();
    WireRequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test-client")))
        .encode(&mut frame, R::header_version(version))
        .unwrap();
    request.encode(&mut frame, version).unwrap();
    frame
}

fn header_for(api: ApiKey, version: i16, correlation_id: i32) -> RequestHeader {
    RequestHeader {
        api_key: api as i16,
        api_version: version,
        correlation_id,
        client_id: None,
        header_version: api.request_header_version(version),
    }
}

/// Strips the size prefix (checking it) and decodes the response header at `version`.
fn open_response(frame: BytesMut, header_version: i16) -> (ResponseHeader, Bytes) {
    let mut bytes = frame.freeze();
    let size = bytes.get_i32();
    assert_eq!(size as usize, bytes.len());
    let header = ResponseHeader::decode(&mut bytes, header_version).unwrap();
    (header, bytes)
}

fn metadata_request() -> MetadataRequest {
    let mut topic = MetadataRequestTopic::default();
    topic.name = Some(TopicName(StrBytes::from_static_str("orders")));
    let mut request = MetadataRequest::default();
    request.topics = Some(vec![topic]);
    // Left at its default (true): false cannot be encoded below v4, where the field is absent.
    request.allow_auto_topic_creation = true;
    request
}

fn produce_request() -> ProduceRequest {
    let mut partition = PartitionProduceData::default();
    partition.index = 3;
    partition.records = Some(Bytes::from_static(b"not really a record batch"));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("orders"));
    topic.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 30_000;
    request.topic_data = vec![topic];
    request
}

fn fetch_request() -> FetchRequest {
    let mut partition = FetchPartition::default();
    partition.partition = 1;
    partition.fetch_offset = 42;
    partition.partition_max_bytes = 1 << 20;
    let mut topic = FetchTopic::default();
    topic.topic = TopicName(StrBytes::from_static_str("orders"));
    topic.partitions = vec![partition];
    let mut request = FetchRequest::default();
    request.max_wait_ms = 500;
    request.topics = vec![topic];
    request
}

fn api_versions_request() -> ApiVersionsRequest {
    let mut request = ApiVersionsRequest::default();
    request.client_software_name = StrBytes::from_static_str("kelp-test");
    request.client_software_version = StrBytes::from_static_str("1.0");
    request
}

/// A Metadata response with only the fields that exist at `version`.
fn metadata_response(version: i16) -> MetadataResponse {
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(1);
    broker.host = StrBytes::from_static_str("localhost");
    broker.port = 9092;
    let mut response = MetadataResponse::default();
    response.brokers = vec![broker];
    response.controller_id = BrokerId(1);
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_static_str("kelp"));
    }
    response
}

#[test]
fn requests_decode_back_at_flexible_and_non_flexible_versions() {
    for version in [1, 12] {
        let frame = request_frame(ApiKey::Metadata, version, 5, &metadata_request());
        let (header, body) = parse_request(frame).unwrap();
        assert_eq!(header.client_id.as_deref(), Some("test-client"));
        match decode_request(&header, body).unwrap() {
            RequestKind::Metadata(request) => assert_eq!(request, metadata_request()),
            other => panic!("decoded the wrong API: {other:?}"),
        }
    }
}

#[test]
fn versions_outside_the_codec_range_are_refused() {
    // Kafka 4 removed Produce v0-2; the codec's range starts at 3.
    let header = header_for(ApiKey::Produce, 2, 1);
    let error = decode_request(&header, Bytes::new()).unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::UnsupportedVersion {
                api_key: 0,
                api_version: 2,
                min: 3,
                ..
            }
        ),
        "{error:?}"
    );
    let header = header_for(ApiKey::Metadata, i16::MAX, 1);
    assert!(matches!(
        decode_request(&header, Bytes::new()),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
    let mut header = header_for(ApiKey::Metadata, 1, 1);
    header.api_key = 4242;
    assert_eq!(
        decode_request(&header, Bytes::new()),
        Err(DecodeError::UnknownApiKey { api_key: 4242 })
    );
}

#[test]
fn trailing_bytes_after_a_body_are_ignored_as_kafka_does() {
    // librdkafka 2.16's Metadata v12 body: null topics, two booleans where
    // the schema has one, an empty tagged section, then three more bytes.
    let mut frame = request_frame(ApiKey::Metadata, 12, 5, &metadata_request());
    frame.put_slice(b"xyz");
    let (header, body) = parse_request(frame).unwrap();
    assert!(matches!(
        decode_request(&header, body),
        Ok(RequestKind::Metadata(_))
    ));
}

#[test]
fn responses_round_trip_at_flexible_and_non_flexible_versions() {
    // Metadata v1: response header v0; v12: flexible, response header v1.
    for (version, response_header_version) in [(1, 0), (12, 1)] {
        let header = header_for(ApiKey::Metadata, version, 99);
        let response = ResponseKind::Metadata(metadata_response(version));
        let frame = encode_response(&header, &response).unwrap();
        let typed = encode_response_message(&header, &metadata_response(version)).unwrap();
        assert_eq!(frame, typed);
        let (response_header, mut body) = open_response(frame, response_header_version);
        assert_eq!(response_header.correlation_id, 99);
        assert!(response_header.unknown_tagged_fields.is_empty());
        let decoded = MetadataResponse::decode(&mut body, version).unwrap();
        assert!(
            !body.has_remaining(),
            "v{version}: {} bytes left",
            body.len()
        );
        assert_eq!(decoded, metadata_response(version));
    }
}

#[test]
fn api_versions_v3_uses_header_v0_and_leaves_default_tagged_fields_out() {
    let mut entry = ApiVersion::default();
    entry.api_key = 18;
    entry.min_version = 0;
    entry.max_version = 4;
    let mut response = ApiVersionsResponse::default();
    response.api_keys = vec![entry];
    assert_eq!(response.finalized_features_epoch, -1);
    let header = header_for(ApiKey::ApiVersions, 3, 7);
    let frame = encode_response(&header, &ResponseKind::ApiVersions(response.clone())).unwrap();
    // Header v0 (just the correlation id), then: error_code, compact array of one entry
    // (length 2, key, min, max, empty tags), throttle_time_ms, and an empty tag section.
    // FinalizedFeaturesEpoch = -1 (tag 1) must not appear: librdkafka < 2.1.2 mis-skips it.
    let expected: &[u8] = &[
        0, 0, 0, 19, // size
        0, 0, 0, 7, // correlation id, no tagged fields (header v0)
        0, 0, // error code
        2, 0, 18, 0, 0, 0, 4, 0, // api_keys
        0, 0, 0, 0, // throttle_time_ms
        0, // no tagged fields
    ];
    assert_eq!(frame.as_ref(), expected);
    let (_, mut body) = open_response(frame, 0);
    assert_eq!(ApiVersionsResponse::decode(&mut body, 3).unwrap(), response);

    // A non-default epoch does appear as tag 1: the check above can tell the difference.
    response.finalized_features_epoch = 5;
    let frame = encode_response(&header, &ResponseKind::ApiVersions(response)).unwrap();
    assert_eq!(frame.len(), expected.len() + 10);
    assert_eq!(&frame[expected.len() - 1..expected.len() + 2], &[1, 1, 8]);
}

#[test]
fn response_at_a_version_the_codec_refuses_is_an_error() {
    let header = header_for(ApiKey::Metadata, 99, 1);
    let error =
        encode_response(&header, &ResponseKind::Metadata(metadata_response(12))).unwrap_err();
    assert!(
        matches!(
            error,
            EncodeError::Body {
                api_key: 3,
                api_version: 99,
                ..
            }
        ),
        "{error:?}"
    );
}

/// A body whose first field is an array claiming 2^31-1 elements, with nothing after it.
/// Before the vendor patch (KELP-PATCH.md) this made the decoder reserve tens of
/// gigabytes and the process abort; now it is an ordinary decode error.
#[test]
fn hostile_array_length_is_an_error_not_an_allocation() {
    // Metadata v1: topics is a nullable Array (i32 length).
    let header = header_for(ApiKey::Metadata, 1, 1);
    let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
    let error = decode_request(&header, body).unwrap_err();
    assert!(matches!(error, DecodeError::Malformed { .. }), "{error:?}");

    // Metadata v12: topics is a CompactArray (varint length + 1 = 2^32-1).
    let header = header_for(ApiKey::Metadata, 12, 1);
    let body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0]);
    let error = decode_request(&header, body).unwrap_err();
    assert!(matches!(error, DecodeError::Malformed { .. }), "{error:?}");

    // Produce v3: transactional_id null, acks, timeout, then topic_data of 2^31-1 entries.
    let header = header_for(ApiKey::Produce, 3, 1);
    let body = Bytes::from_static(&[0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0x7f, 0xff, 0xff, 0xff]);
    assert!(matches!(
        decode_request(&header, body),
        Err(DecodeError::Malformed { .. })
    ));
}

/// The same hostile array arriving as a whole 20-byte request through framing and header parsing.
#[test]
fn hostile_array_length_in_a_20_byte_request() {
    let mut wire = BytesMut::new();
    wire.put_i32(16); // size
    wire.put_i16(3); // Metadata
    wire.put_i16(1); // v1
    wire.put_i32(1); // correlation id
    wire.put_i16(-1); // null client id
    wire.put_i32(i32::MAX); // topics: 2^31-1 elements
    wire.put_u16(0); // two bytes of "elements"
    assert_eq!(wire.len(), 20);
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
    decoder.extend(&wire);
    let frame = decoder.next_frame().unwrap().unwrap();
    let (header, body) = parse_request(frame).unwrap();
    assert!(matches!(
        decode_request(&header, body),
        Err(DecodeError::Malformed { .. })
    ));
}

/// Valid requests of the APIs clients send most, at old and new versions.
fn seed_frames() -> Vec<BytesMut> {
    let mut frames = Vec::new();
    for version in [0, 1, 4, 9, 12, 13] {
        frames.push(request_frame(
            ApiKey::Metadata,
            version,
            1,
            &metadata_request(),
        ));
    }
    for version in [3, 7, 9, 12] {
        frames.push(request_frame(
            ApiKey::Produce,
            version,
            2,
            &produce_request(),
        ));
    }
    for version in [4, 11, 12, 13, 16] {
        frames.push(request_frame(ApiKey::Fetch, version, 3, &fetch_request()));
    }
    for version in [0, 2, 3, 4] {
        frames.push(request_frame(
            ApiKey::ApiVersions,
            version,
            4,
            &api_versions_request(),
        ));
    }
    frames
}

/// One random damage: flipped bytes, a cut, inserted junk, or an extreme length planted.
fn mutate(rng: &mut StdRng, frame: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..=3) {
        if frame.is_empty() {
            return;
        }
        let at = rng.random_range(0..frame.len());
        match rng.random_range(0..5) {
            0 => frame[at] ^= 1 << rng.random_range(0..8),
            1 => frame[at] = rng.random(),
            2 => frame.truncate(at),
            3 => {
                let junk: [u8; 4] = rng.random();
                frame.splice(at..at, junk.iter().copied());
            }
            _ => {
                let extreme: &[u8] = match rng.random_range(0..4) {
                    0 => &[0x7f, 0xff, 0xff, 0xff],
                    1 => &[0xff, 0xff, 0xff, 0xff],
                    2 => &[0xff, 0xff, 0xff, 0xff, 0x0f],
                    _ => &[0x80, 0x00, 0x00, 0x00],
                };
                let end = (at + extreme.len()).min(frame.len());
                frame.splice(at..end, extreme.iter().copied());
            }
        }
    }
}

/// Frames, parses and decodes `wire`, as a connection would; must never panic.
fn decode_wire(wire: &[u8]) -> usize {
    let mut decoder = FrameDecoder::new(1 << 20);
    decoder.extend(wire);
    let mut decoded = 0;
    while let Ok(Some(frame)) = decoder.next_frame() {
        if let Ok((header, body)) = parse_request(frame) {
            if decode_request(&header, body).is_ok() {
                decoded += 1;
            }
        }
    }
    decoded
}

#[test]
fn twenty_thousand_mutated_requests_never_panic() {
    let seed: u64 = std::env::var("KELP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (rerun with KELP_TEST_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds = seed_frames();
    // Every unmutated seed decodes: the mutations start from valid requests.
    for frame in &seeds {
        let mut wire = (frame.len() as i32).to_be_bytes().to_vec();
        wire.extend_from_slice(frame);
        assert_eq!(decode_wire(&wire), 1, "seed frame {:?}", &frame[..8]);
    }
    let mut still_valid = 0;
    for _ in 0..20_000 {
        let mut frame = seeds[rng.random_range(0..seeds.len())].to_vec();
        mutate(&mut rng, &mut frame);
        // Usually a correct size prefix (so the damage reaches the decoder), sometimes a wrong one.
        let size = if rng.random_ratio(9, 10) {
            frame.len() as i32
        } else {
            rng.random()
        };
        let mut wire = size.to_be_bytes().to_vec();
        wire.extend_from_slice(&frame);
        still_valid += decode_wire(&wire);
    }
    println!("{still_valid} of 20000 mutated requests still decoded");
}
