//! Topic administration: create, delete, list, describe.

use std::rc::Rc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, DeleteTopicsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::config::ClientConfig;
use crate::error::Error;
use crate::metadata::{topic_name, Cluster, UNKNOWN_TOPIC_OR_PARTITION};

/// Kafka's TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// How often `create_topic` re-reads metadata while waiting for leaders.
const CREATE_POLL: Duration = Duration::from_millis(50);

/// A topic and its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// How many partitions it has.
    pub partitions: i32,
}

/// One partition of a described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// The leader's node id, -1 when there is none.
    pub leader: i32,
    /// Every replica's node id.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' node ids.
    pub isr: Vec<i32>,
}

/// A topic's partitions and their placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic name.
    pub name: String,
    /// Whether the topic is internal.
    pub is_internal: bool,
    /// Partitions in index order.
    pub partitions: Vec<PartitionInfo>,
}

/// An admin client.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Rc<Cluster>,
}

impl Admin {
    /// Connects to the cluster (fails at once if no bootstrap broker answers).
    pub async fn connect(config: ClientConfig) -> Result<Admin, Error> {
        Ok(Admin {
            cluster: Cluster::connect(config).await?,
        })
    }

    /// An admin client on an existing cluster handle (shares its connections).
    pub fn with_cluster(cluster: Rc<Cluster>) -> Admin {
        Admin { cluster }
    }

    /// The cluster handle.
    pub fn cluster(&self) -> &Rc<Cluster> {
        &self.cluster
    }

    /// Creates a topic with the broker's default replication factor, then waits until every partition has a leader.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), Error> {
        let timeout = self.cluster.config().request_timeout;
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(key, value)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string((*key).to_owned()))
                            .with_value(Some(StrBytes::from_string((*value).to_owned())))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(millis(timeout));
        let response = self.cluster.controller().await?.call(request).await?;
        let result = response
            .topics
            .iter()
            .find(|t| t.name.as_str() == name)
            .ok_or_else(|| Error::Protocol {
                addr: self.cluster.config().bootstrap.clone(),
                reason: format!("CreateTopics response does not mention {name:?}"),
            })?;
        match result.error_code {
            0 => {}
            TOPIC_ALREADY_EXISTS => return Err(Error::TopicExists(name.to_owned())),
            code => {
                let message = result.error_message.as_ref().map(|m| m.as_str());
                return Err(Error::kafka(code, message));
            }
        }
        self.wait_for_leaders(name, timeout).await
    }

    /// Topic creation spreads through a cluster asynchronously; wait until producing can start.
    async fn wait_for_leaders(&self, name: &str, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.cluster.refresh_topic(name).await {
                Ok(topic) if topic.partitions.iter().all(|p| p.leader >= 0) => return Ok(()),
                Ok(_) | Err(Error::UnknownTopic(_)) if Instant::now() < deadline => {
                    glommio::timer::sleep(CREATE_POLL).await;
                }
                Ok(_) => {
                    return Err(Error::NoLeader {
                        topic: name.to_owned(),
                        partition: -1,
                    })
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<(), Error> {
        let connection = self.cluster.controller().await?;
        let mut request = DeleteTopicsRequest::default()
            .with_timeout_ms(millis(self.cluster.config().request_timeout));
        // v6 names topics in `topics` (by name or id); earlier versions in `topic_names`.
        if connection.version(ApiKey::DeleteTopics).unwrap_or(0) >= 6 {
            request.topics = vec![DeleteTopicState::default().with_name(Some(topic_name(name)))];
        } else {
            request.topic_names = vec![topic_name(name)];
        }
        let response = connection.call(request).await?;
        self.cluster.invalidate_topic(name);
        let result = response.responses.first().ok_or_else(|| Error::Protocol {
            addr: connection.addr().to_owned(),
            reason: "DeleteTopics response lists no topic".to_owned(),
        })?;
        match result.error_code {
            0 => Ok(()),
            UNKNOWN_TOPIC_OR_PARTITION => Err(Error::UnknownTopic(name.to_owned())),
            code => {
                let message = result.error_message.as_ref().map(|m| m.as_str());
                Err(Error::kafka(code, message))
            }
        }
    }

    /// Every topic in the cluster, by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>, Error> {
        self.cluster.refresh(None).await?;
        let mut topics: Vec<TopicInfo> = self
            .cluster
            .view()
            .topics
            .values()
            .map(|t| TopicInfo {
                name: t.name.clone(),
                // At most i32::MAX partitions come from the wire.
                partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// One topic's partitions, leaders and replicas, fresh from the cluster.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, Error> {
        let topic = self.cluster.refresh_topic(name).await?;
        Ok(TopicDescription {
            name: topic.name.clone(),
            is_internal: topic.is_internal,
            partitions: topic
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                })
                .collect(),
        })
    }
}

/// A duration as Kafka's i32 milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
