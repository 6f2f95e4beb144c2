//! A raw Kafka connection for what rdkafka does not expose: exact request
//! versions, per-resource errors, pipelined requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::Broker;

/// One connection to a broker.
pub struct Raw {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Raw {
    /// Connects, with a read timeout of `timeout`.
    pub fn connect(broker: &Broker, timeout: Duration) -> Raw {
        let stream = TcpStream::connect(broker.addr).unwrap();
        stream.set_read_timeout(Some(timeout)).unwrap();
        Raw {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Sends `request` at `version`; returns its correlation id.
    pub fn send<R: Request>(&mut self, version: i16, request: &R) -> i32 {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")))
            .encode(&mut body, R::header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).unwrap();
        correlation_id
    }

    /// Reads the next response, which must answer `correlation_id`; `None`
    /// if the broker closed the connection first.
    pub fn receive<R: Request>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> Option<R::Response> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let mut response = vec![0; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut response).unwrap();
        let mut buf = bytes::Bytes::from(response);
        let header =
            ResponseHeader::decode(&mut buf, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, correlation_id);
        let decoded = R::Response::decode(&mut buf, version).unwrap();
        assert_eq!(buf.remaining(), 0, "the whole response was read");
        Some(decoded)
    }
}

/// Sends one request at `version` on a new connection and decodes the answer.
pub fn call<R: Request>(broker: &Broker, version: i16, request: &R) -> R::Response {
    let mut raw = Raw::connect(broker, Duration::from_secs(30));
    let id = raw.send(version, request);
    raw.receive::<R>(version, id)
        .expect("the broker answers before closing")
}

/// One uncompressed RecordBatch v2 of records valued `values`, all with
/// `timestamp`, as a producer sends it.
pub fn batch<S: AsRef<str>>(values: &[S], timestamp: i64) -> bytes::Bytes {
    let records: Vec<(Option<&str>, &str)> = values.iter().map(|v| (None, v.as_ref())).collect();
    keyed_batch(&records, timestamp)
}

/// [`batch`] of (key, value) records.
pub fn keyed_batch(records: &[(Option<&str>, &str)], timestamp: i64) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp,
            key: key.map(|k| bytes::Bytes::copy_from_slice(k.as_bytes())),
            value: Some(bytes::Bytes::copy_from_slice(value.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

/// Every record in `records` (a fetch response's bytes) as it decodes.
pub fn records(mut records: bytes::Bytes) -> Vec<kafka_protocol::records::Record> {
    let mut out = Vec::new();
    while !records.is_empty() {
        out.extend(
            kafka_protocol::records::RecordBatchDecoder::decode(&mut records)
                .unwrap()
                .records,
        );
    }
    out
}

/// A topic name as the protocol carries it.
pub fn topic_name(topic: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_owned()))
}

/// CreateTopics v7 of one topic; its error code and message.
pub fn create_topic(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> (i16, Option<String>) {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::CreateTopicsRequest;
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string((*k).to_owned()))
                .with_value(Some(StrBytes::from_string((*v).to_owned())))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(configs)]);
    let result = &call(broker, 7, &request).topics[0];
    (
        result.error_code,
        result.error_message.as_ref().map(ToString::to_string),
    )
}

impl Raw {
    /// Connects to `addr` (a broker another thread owns), with a read
    /// timeout of `timeout`.
    pub fn connect_to(addr: std::net::SocketAddr, timeout: Duration) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(timeout)).unwrap();
        Raw {
            stream,
            next_correlation_id: 1,
        }
    }
}
