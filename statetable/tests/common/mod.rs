//! Shared by the statetable tests: a real `redis-server` of our own on a free loopback port.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server process of this test, killed on drop.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    aof: bool,
    child: Option<Child>,
}

fn redis_binary() -> PathBuf {
    for p in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("redis-server not found: scripts/test-all.sh installs it (apt-get install -y redis-server)");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl RedisServer {
    /// A fresh server without persistence.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// A fresh server; with `aof`, every write is fsynced to an append-only file in its own
    /// directory, so that a kill -9 and restart keeps what Redis acknowledged.
    pub fn start_with(aof: bool) -> RedisServer {
        let dir =
            std::env::temp_dir().join(format!("statetable-redis-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = RedisServer { port: free_port(), dir, aof, child: None };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(redis_binary());
        cmd.current_dir(&self.dir)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--daemonize", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        self.child = Some(cmd.spawn().expect("start redis-server"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut c) = self.client().get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not come up on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT/DB`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{}", self.port, db)
    }

    fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/0", self.port)).unwrap()
    }

    fn conn(&self, db: u8) -> redis::Connection {
        redis::Client::open(self.url(db)).unwrap().get_connection().unwrap()
    }

    /// Kills it (-9).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills it (-9) and starts it again on the same port (and, with AOF, the same data).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn hgetall(&self, db: u8, key: &str) -> BTreeMap<String, String> {
        redis::cmd("HGETALL").arg(key).query(&mut self.conn(db)).unwrap()
    }

    pub fn keys(&self, db: u8, pattern: &str) -> Vec<String> {
        let mut k: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut self.conn(db)).unwrap();
        k.sort();
        k
    }

    pub fn hset(&self, db: u8, key: &str, fields: &[(&str, &str)]) {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for (f, v) in fields {
            cmd.arg(*f).arg(*v);
        }
        let _: i64 = cmd.query(&mut self.conn(db)).unwrap();
    }

    /// Polls `f` until it holds, for up to 30 s.
    pub fn eventually(&self, what: &str, mut f: impl FnMut(&RedisServer) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f(self) {
            assert!(Instant::now() < deadline, "not within 30 s: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
