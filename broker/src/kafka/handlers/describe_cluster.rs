//! DescribeCluster (key 60), v0-2: this broker, the cluster id, and this
//! node as the controller (Kafka brokers name a live broker there).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::errors::ErrorCode;
use crate::shard::Shard;

/// Kafka's "authorized operations not provided" value.
const OPERATIONS_NOT_PROVIDED: i32 = i32::MIN;
/// The operations Kafka defines for the cluster resource, as bits of their
/// ACL operation codes: CREATE (5), ALTER (7), DESCRIBE (8), CLUSTER_ACTION
/// (9), DESCRIBE_CONFIGS (10), ALTER_CONFIGS (11), IDEMPOTENT_WRITE (12).
/// With no authorizer every one is allowed.
const CLUSTER_OPERATIONS: i32 = 1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12;
/// EndpointType: brokers.
const ENDPOINT_BROKER: i8 = 1;
/// EndpointType: controllers.
const ENDPOINT_CONTROLLER: i8 = 2;

/// Answers a DescribeCluster request.
pub fn handle(
    shard: &Shard,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    // v0 has no endpoint type: it is "broker" there.
    let asked = if version >= 1 {
        request.endpoint_type
    } else {
        ENDPOINT_BROKER
    };
    if asked != ENDPOINT_BROKER {
        // As Kafka's computeDescribeClusterResponse.
        let (code, message) = if asked == ENDPOINT_CONTROLLER {
            (
                ErrorCode::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )
        } else {
            (
                ErrorCode::UnsupportedEndpointType,
                "Unsupported endpoint type",
            )
        };
        return DescribeClusterResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_static_str(message)));
    }
    let node = BrokerId(shard.config.node_id);
    let broker = DescribeClusterBroker::default()
        .with_broker_id(node)
        .with_host(StrBytes::from_string(shard.config.advertised_host.clone()))
        .with_port(i32::from(shard.config.advertised_port));
    let operations = if request.include_cluster_authorized_operations {
        CLUSTER_OPERATIONS
    } else {
        OPERATIONS_NOT_PROVIDED
    };
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(shard.topics().cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(operations)
}
