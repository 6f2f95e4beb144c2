//! The cluster as the client sees it (brokers, topics, partition leaders) and one connection per broker.
//!
//! The view is an immutable snapshot (`Rc<ClusterView>`) replaced on each
//! refresh, so a caller may hold it across awaits. Refreshes happen on
//! demand: when a topic is first used, and when a request fails in a way
//! that says the leaders moved.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::Error;
use kelp_net::signal::Signal;

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION.
pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// The partition index.
    pub partition: i32,
    /// The leader's node id, -1 when there is none.
    pub leader: i32,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// Node ids of every replica.
    pub replicas: Vec<i32>,
    /// Node ids of the in-sync replicas.
    pub isr: Vec<i32>,
}

/// One topic's partitions, indexed by partition number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// The topic name.
    pub name: String,
    /// Whether the topic is internal (`__consumer_offsets`...).
    pub is_internal: bool,
    /// Partitions in index order; `partitions[i].partition == i`.
    pub partitions: Vec<PartitionMetadata>,
}

impl TopicMetadata {
    /// The leader of `partition`, or why there is none.
    pub fn leader(&self, partition: i32) -> Result<i32, Error> {
        let meta = usize::try_from(partition)
            .ok()
            .and_then(|index| self.partitions.get(index))
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.name.clone(),
                partition,
            })?;
        if meta.leader < 0 {
            return Err(Error::NoLeader {
                topic: self.name.clone(),
                partition,
            });
        }
        Ok(meta.leader)
    }
}

/// An immutable snapshot of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Node id to `host:port`.
    pub brokers: BTreeMap<i32, String>,
    /// The controller's node id (-1 if unknown).
    pub controller: i32,
    /// Topics learned so far.
    pub topics: HashMap<String, Rc<TopicMetadata>>,
}

/// The metadata cache and connection pool of one client.
pub struct Cluster {
    config: ClientConfig,
    view: RefCell<Rc<ClusterView>>,
    connections: RefCell<HashMap<i32, Connection>>,
    /// A connection to a bootstrap address, used until node ids are known.
    bootstrap: RefCell<Option<Connection>>,
    /// Nodes being connected to right now, so concurrent callers share one connect.
    connecting: RefCell<HashSet<i32>>,
    connected: Signal,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap", &self.config.bootstrap)
            .field("view", &self.view.borrow())
            .finish()
    }
}

impl Cluster {
    /// A cluster handle; nothing is connected until the first request.
    pub fn new(config: ClientConfig) -> Rc<Cluster> {
        Rc::new(Cluster {
            config,
            view: RefCell::new(Rc::new(ClusterView {
                controller: -1,
                ..ClusterView::default()
            })),
            connections: RefCell::new(HashMap::new()),
            bootstrap: RefCell::new(None),
            connecting: RefCell::new(HashSet::new()),
            connected: Signal::default(),
        })
    }

    /// Connects and reads the broker list, so a bad address fails here rather than later.
    pub async fn connect(config: ClientConfig) -> Result<Rc<Cluster>, Error> {
        let cluster = Cluster::new(config);
        cluster.refresh(Some(&[])).await?;
        Ok(cluster)
    }

    /// The client configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The latest snapshot.
    pub fn view(&self) -> Rc<ClusterView> {
        self.view.borrow().clone()
    }

    /// A topic's metadata, from the cache or asked of the cluster.
    pub async fn topic(&self, name: &str) -> Result<Rc<TopicMetadata>, Error> {
        if let Some(topic) = self.view.borrow().topics.get(name) {
            return Ok(topic.clone());
        }
        self.refresh_topic(name).await
    }

    /// Asks the cluster for one topic's metadata, replacing what the cache held.
    pub async fn refresh_topic(&self, name: &str) -> Result<Rc<TopicMetadata>, Error> {
        let response = self.refresh(Some(&[name])).await?;
        let topic = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(name));
        match topic {
            None => Err(Error::UnknownTopic(name.to_owned())),
            Some(t) if t.error_code == UNKNOWN_TOPIC_OR_PARTITION => {
                Err(Error::UnknownTopic(name.to_owned()))
            }
            Some(t) => match Error::from_code(t.error_code, None) {
                Some(error) => Err(error),
                None => self
                    .view
                    .borrow()
                    .topics
                    .get(name)
                    .cloned()
                    .ok_or_else(|| Error::UnknownTopic(name.to_owned())),
            },
        }
    }

    /// Asks the cluster for `topics` (`None`: all topics) and merges the answer into the view.
    pub async fn refresh(&self, topics: Option<&[&str]>) -> Result<MetadataResponse, Error> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let connection = self.any_connection().await?;
        let response = connection.call(request).await?;
        self.merge(&response, topics.is_none());
        Ok(response)
    }

    fn merge(&self, response: &MetadataResponse, all_topics: bool) {
        let old = self.view();
        let brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        let mut topics = if all_topics {
            HashMap::new()
        } else {
            old.topics.clone()
        };
        for topic in &response.topics {
            let Some(name) = topic.name.as_ref().map(|n| n.as_str().to_owned()) else {
                continue;
            };
            if topic.error_code != 0 {
                topics.remove(&name);
                continue;
            }
            let mut partitions: Vec<PartitionMetadata> = topic
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    // A partition in error (LEADER_NOT_AVAILABLE...) has no usable leader.
                    leader: if p.error_code == 0 || p.error_code == 9 {
                        p.leader_id.0
                    } else {
                        -1
                    },
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                    isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            // Partition numbers are dense in Kafka; a gap would make indexing wrong, so refuse it.
            if partitions
                .iter()
                .enumerate()
                .any(|(i, p)| usize::try_from(p.partition).ok() != Some(i))
            {
                tracing::warn!(topic = name, "metadata lists partitions with gaps; ignored");
                continue;
            }
            topics.insert(
                name.clone(),
                Rc::new(TopicMetadata {
                    name,
                    is_internal: topic.is_internal,
                    partitions,
                }),
            );
        }
        *self.view.borrow_mut() = Rc::new(ClusterView {
            brokers,
            controller: response.controller_id.0,
            topics,
        });
    }

    /// Forgets a topic's cached metadata so the next use asks again.
    pub fn invalidate_topic(&self, name: &str) {
        let mut view = self.view.borrow_mut();
        if view.topics.contains_key(name) {
            let mut next = ClusterView::clone(&view);
            next.topics.remove(name);
            *view = Rc::new(next);
        }
    }

    /// The connection to node `node_id`, opened if needed (or reopened if broken).
    pub async fn node(&self, node_id: i32) -> Result<Connection, Error> {
        loop {
            let seen = self.connected.generation();
            if let Some(connection) = self.connections.borrow().get(&node_id) {
                if !connection.is_broken() {
                    return Ok(connection.clone());
                }
            }
            if self.connecting.borrow().contains(&node_id) {
                self.connected.changed(seen).await;
                continue;
            }
            // Node ids come from metadata, so the view knows them (a refresh here would recurse).
            let addr =
                self.view()
                    .brokers
                    .get(&node_id)
                    .cloned()
                    .ok_or_else(|| Error::Protocol {
                        addr: self.config.bootstrap.clone(),
                        reason: format!("node {node_id} is not in the cluster metadata"),
                    })?;
            self.connecting.borrow_mut().insert(node_id);
            let result = Connection::connect(&addr, &self.config).await;
            self.connecting.borrow_mut().remove(&node_id);
            if let Ok(connection) = &result {
                self.connections
                    .borrow_mut()
                    .insert(node_id, connection.clone());
            }
            self.connected.notify();
            return result;
        }
    }

    /// Any working connection: a pooled one, else a known broker, else a bootstrap address.
    pub async fn any_connection(&self) -> Result<Connection, Error> {
        let pooled = self
            .connections
            .borrow()
            .values()
            .chain(self.bootstrap.borrow().iter())
            .find(|c| !c.is_broken())
            .cloned();
        if let Some(connection) = pooled {
            return Ok(connection);
        }
        let known: Vec<i32> = self.view().brokers.keys().copied().collect();
        for node_id in known {
            if let Ok(connection) = self.node(node_id).await {
                return Ok(connection);
            }
        }
        let mut reasons = Vec::new();
        for addr in self.config.bootstrap_addrs() {
            match Connection::connect(addr, &self.config).await {
                Ok(connection) => {
                    *self.bootstrap.borrow_mut() = Some(connection.clone());
                    return Ok(connection);
                }
                Err(error) => reasons.push(error),
            }
        }
        match reasons.len() {
            0 => Err(Error::Config(format!(
                "no bootstrap address in {:?}",
                self.config.bootstrap
            ))),
            // One address: its own error says it best.
            1 => Err(reasons.remove(0)),
            _ => Err(Error::NoBroker {
                bootstrap: self.config.bootstrap.clone(),
                reasons: reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }

    /// The controller's connection (any broker if the controller is unknown).
    pub async fn controller(&self) -> Result<Connection, Error> {
        let mut controller = self.view().controller;
        if controller < 0 {
            self.refresh(Some(&[])).await?;
            controller = self.view().controller;
        }
        if controller < 0 {
            return self.any_connection().await;
        }
        self.node(controller).await
    }
}

/// A protocol topic name from a string.
pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
