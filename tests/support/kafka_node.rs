//! Kafka brokers and clusters of a test's own, configured the ways users configure theirs:
//! listener names of their choosing, one or both SCRAM mechanisms, an advertised host other
//! than the bootstrap host, three brokers with replication. Each node is a real Apache Kafka
//! JVM (KRaft, combined broker and controller) started from the jars `scripts/kafka libs`
//! fetched, in a folder of its own, killed (SIGKILL) when the cluster is dropped. Kafka's own
//! tools (console producer, consumer-group command) run from the same jars.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The folder of Kafka's jars (the broker's and its tools'), fetched once.
pub fn libs() -> PathBuf {
    static LIBS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIBS.get_or_init(|| {
        let o = Command::new(format!("{}/scripts/kafka", env!("CARGO_MANIFEST_DIR")))
            .arg("libs")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "scripts/kafka libs: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
    })
    .clone()
}

/// `java -cp LIBS/* class args…` (one of Kafka's tools), its output.
pub fn java_tool(class: &str, args: &[&str], stdin: Option<&Path>) -> Output {
    let mut c = Command::new("java");
    c.arg("-Xmx256m")
        .arg("-cp")
        .arg(format!("{}/*", libs().display()))
        .arg(class)
        .args(args);
    if let Some(f) = stdin {
        c.stdin(std::fs::File::open(f).unwrap());
    }
    c.output().unwrap()
}

/// A port below Linux's ephemeral range (so no client connection holds it when a node is
/// restarted) that nothing listens on now.
pub fn quiet_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 300) as u16 * 25;
    loop {
        let p = base + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2000;
        if p < 29_000 && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// One node: its id, its client listeners' ports, its folder and process.
pub struct Node {
    /// `node.id`.
    pub id: u32,
    /// The client listeners' ports, in the order the cluster's spec named them.
    pub ports: Vec<u16>,
    /// The controller listener's port.
    pub controller: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// "Kafka Server started" lines in its log before its latest launch.
    starts_before: usize,
}

impl Node {
    /// Whether its process is running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    fn launch(&mut self) {
        self.starts_before = self.log().matches("Kafka Server started").count();
        let log = std::fs::File::create(self.dir.join("stdout.log")).unwrap();
        self.child = Some(
            Command::new("java")
                .args([
                    "-Xmx384m",
                    "-Xms384m",
                    "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                ])
                .arg(format!(
                    "-Dlog4j2.configurationFile={}",
                    self.dir.join("log4j2.properties").display()
                ))
                .arg("-cp")
                .arg(format!("{}/*", libs().display()))
                .arg("kafka.Kafka")
                .arg(self.dir.join("server.properties"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    /// SIGKILL: the node is gone at once, as when its machine fails.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// A cluster of nodes, each broker and controller.
pub struct Cluster {
    /// Its nodes, node ids 1…n.
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

/// What a node's client listeners are: for node `id` with client ports `ports`, the lines of
/// `server.properties` that name them (`listeners`, `advertised.listeners`, the protocol map
/// with `CONTROLLER:PLAINTEXT`, `inter.broker.listener.name`, security settings).
pub type Listeners<'a> = &'a dyn Fn(u32, &[u16]) -> String;

impl Cluster {
    /// Starts `n` nodes with `client_listeners` client ports each, configured by `listeners`
    /// and `extra` (lines of `server.properties` every node shares), SCRAM credentials
    /// `scram` (`MECHANISM=[name=…,password=…]`) made at format time; returns once every node
    /// serves.
    pub fn start(
        n: u32,
        client_listeners: usize,
        listeners: Listeners<'_>,
        extra: &str,
        scram: &[String],
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = (1..=n)
            .map(|id| Node {
                id,
                ports: (0..client_listeners).map(|_| quiet_port()).collect(),
                controller: quiet_port(),
                dir: dir.path().join(format!("node-{id}")),
                child: None,
                starts_before: 0,
            })
            .collect();
        let voters = nodes
            .iter()
            .map(|x| format!("{}@127.0.0.1:{}", x.id, x.controller))
            .collect::<Vec<_>>()
            .join(",");
        let rf = n.min(3);
        let out = java_tool("kafka.tools.StorageTool", &["random-uuid"], None);
        let cluster_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!cluster_id.is_empty(), "no cluster id: {out:?}");
        for node in &nodes {
            std::fs::create_dir_all(node.dir.join("data")).unwrap();
            let props = format!(
                "process.roles=broker,controller\nnode.id={id}\ncontroller.quorum.voters={voters}\n\
                 controller.listener.names=CONTROLLER\n{listeners}\n\
                 log.dirs={data}\nnum.partitions=3\nauto.create.topics.enable=false\n\
                 offsets.topic.replication.factor={rf}\noffsets.topic.num.partitions=1\n\
                 transaction.state.log.replication.factor={rf}\n\
                 transaction.state.log.min.isr={min_isr}\n\
                 share.coordinator.state.topic.replication.factor={rf}\n\
                 share.coordinator.state.topic.min.isr={min_isr}\n\
                 group.initial.rebalance.delay.ms=0\n{extra}\n",
                id = node.id,
                listeners = listeners(node.id, &node.ports)
                    .replace("CONTROLLER_PORT", &node.controller.to_string()),
                data = node.dir.join("data").display(),
                min_isr = rf.min(2),
            );
            std::fs::write(node.dir.join("server.properties"), props).unwrap();
            std::fs::write(
                node.dir.join("log4j2.properties"),
                format!(
                    "status = warn\nappender.file.type = File\nappender.file.name = file\n\
                     appender.file.fileName = {}\nappender.file.layout.type = PatternLayout\n\
                     appender.file.layout.pattern = [%d] %p %m (%c)%n\nrootLogger.level = info\n\
                     rootLogger.appenderRef.file.ref = file\n",
                    node.dir.join("server.log").display()
                ),
            )
            .unwrap();
            let config = node.dir.join("server.properties");
            let mut args = vec![
                "format".to_string(),
                "-t".into(),
                cluster_id.clone(),
                "-c".into(),
                config.display().to_string(),
            ];
            for s in scram {
                args.push("--add-scram".into());
                args.push(s.clone());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = java_tool("kafka.tools.StorageTool", &args, None);
            assert!(
                o.status.success(),
                "formatting node {}: {}{}",
                node.id,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        for node in &mut nodes {
            node.launch();
        }
        let mut cluster = Cluster { nodes, _dir: dir };
        for i in 0..cluster.nodes.len() {
            cluster.wait_serving(i);
        }
        cluster
    }

    /// Waits until node `i` (index) has started, or fails with its log.
    fn wait_serving(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(180);
        let node = &mut self.nodes[i];
        loop {
            if node.log().matches("Kafka Server started").count() > node.starts_before {
                return;
            }
            if !node.running() || Instant::now() > deadline {
                let log = node.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let out = std::fs::read_to_string(node.dir.join("stdout.log")).unwrap_or_default();
                panic!(
                    "node {} did not start:\n{}\n{out}",
                    node.id,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Starts node `id` again on its data (after [`Node::kill`]) and waits until it serves.
    pub fn restart(&mut self, id: u32) {
        let i = self.nodes.iter().position(|n| n.id == id).unwrap();
        self.nodes[i].launch();
        self.wait_serving(i);
    }

    /// The node with id `id`.
    pub fn node(&mut self, id: u32) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap()
    }

    /// The bootstrap servers of client listener `k` on every node, as `host:port,…`.
    pub fn bootstrap(&self, k: usize, host: &str) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{host}:{}", n.ports[k]))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }
}

/// TLS material for a broker: a private CA, and a server certificate for IP:127.0.0.1 and
/// DNS:localhost in one PEM keystore (key as unencrypted PKCS#8, then the certificate).
pub struct BrokerTls {
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The broker's keystore (`ssl.keystore.type=PEM`).
    pub keystore: PathBuf,
}

impl BrokerTls {
    /// Makes the material in `dir` with the `openssl` command.
    pub fn make(dir: &Path) -> BrokerTls {
        let run = |args: &[&str]| {
            let o = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=a users' private CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=kafka",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        run(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "server.key",
            "-out",
            "server.p8",
        ]);
        let keystore = dir.join("keystore.pem");
        let mut pem = std::fs::read(dir.join("server.p8")).unwrap();
        pem.extend(std::fs::read(dir.join("server.pem")).unwrap());
        std::fs::write(&keystore, pem).unwrap();
        BrokerTls {
            ca: dir.join("ca.pem"),
            keystore,
        }
    }
}
