//! The `zmq-adaptor` binary: a drop-in replacement for an API gateway's ZMQ adaptor, on `zmtp`
//! sockets (no libzmq).
//!
//! An XSUB bound on `--bind`, where the gateway's PUB connects, is proxied to an XPUB bound on
//! `--publish`, where tracking services' SUBs connect: data flows downstream, subscriptions and
//! cancels flow upstream. `--debug` prints every message; `--test` adds a self-test (a test
//! publisher, a debug subscriber and a SUB→PUSH proxy with a debug receiver). The XPUB may require
//! CURVE of subscribers (`--curve-secret-key-file`). See `--help`.

#[path = "zmq-adaptor/output.rs"]
mod output;
#[path = "zmq-adaptor/selftest.rs"]
mod selftest;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use relay::security::{Input, PortSecurity};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinSet;
use tracing::{debug, info};
use tracing_subscriber::EnvFilter;
use zmtp::{Endpoint, Options, Socket, SocketType};

use output::Printer;

/// The log filter when `RUST_LOG` is unset.
const DEFAULT_LOG: &str = "zmq_adaptor=info,zmtp=warn";
/// How long closing waits to flush queued messages.
const LINGER: Duration = Duration::from_millis(200);
/// Bound on the whole shutdown (closing sockets, draining stdout).
const SHUTDOWN_MAX: Duration = Duration::from_secs(2);

const AFTER_HELP: &str = "\
MODES:
  default   XSUB bound on --bind (the gateway's PUB connects) -> XPUB bound on --publish (tracking
            services' SUBs connect). Subscriptions and cancels (also those of a subscriber that
            disconnects) are forwarded upstream. Runs until SIGINT or SIGTERM, then closes its
            sockets (linger 200 ms) and exits 0.
  --debug   as default, and prints every message on stdout, one line each:
              [data] <frame> | <frame> ...     a message flowing downstream
              [subscribe] <topic>              a subscription flowing upstream
              [unsubscribe] <topic>            a cancel flowing upstream
              [upstream] <frame> | ...         any other message from a subscriber
            Lines are never dropped: if stdout is not read, forwarding slows down to match.
  --test    self-test: as default, plus
            (1) a SUB bound on --test-sub-bind, subscribed to everything, proxied to a PUSH bound
                on --test-push-bind;
            (2) a PULL connected to that PUSH, printing `> pulled: <message>`;
            (3) a PUB connected to --bind, sending PUB-<A..Z>-<5 digits> every --test-interval
                and printing `... sending:<message>` for each;
            (4) a SUB connected to --publish, subscribed to everything, printing `> got: <message>`.
            Combine with --debug to see the proxy's lines too.

SECURITY:
  By default every socket uses the NULL mechanism. With --curve-secret-key-file the XPUB (--publish)
  is a CURVE server: subscribers must connect as CURVE clients with the public key of that
  certificate as their server key, and their own key must be in --curve-allowed-certs-dir (public
  certificates NAME.key, as `zmtp-keygen --out DIR NAME` or pyzmq's zmq.auth write them), or any key
  is accepted with --curve-allow-any-key (encryption without authentication); one of the two is
  required. The secret certificate must not be readable or writable by group or others (chmod 600),
  as ssh requires. A refused subscriber is disconnected during the handshake and logged at warn with
  its address (zmtp's log lines). The XSUB side (--bind) stays NULL. With --test, the self-test
  subscriber connects with CURVE and a fresh key that is accepted.

OUTPUT:
  A frame is shown as text when every byte is printable ASCII (space to ~), otherwise as 0x and
  lowercase hex; an empty frame (or topic) as <empty>; only its first 256 bytes are shown,
  followed by ...(<n> bytes) when longer. stdout is flushed after every line.

LIMITS:
  Peers must complete the ZMTP handshake within 10 s; messages over 64 MiB disconnect their
  sender; up to 1000 messages are queued per peer (then a slow subscriber misses messages).

LOGGING:
  Logs go to stderr. RUST_LOG sets the filter (default: zmq_adaptor=info,zmtp=warn; e.g.
  RUST_LOG=zmq_adaptor=debug,zmtp=debug shows every connection). --log-json logs JSON lines.

EXIT STATUS:
  0 after SIGINT/SIGTERM or --help; 1 if a socket cannot bind or the proxy fails; 2 for bad
  arguments (such as an endpoint that does not parse, or a key file or certificate directory that
  cannot be used: the message names the option).";

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "zmq-adaptor",
    version,
    about = "Forwards the API gateway's ZMQ publications to tracking services (XSUB -> XPUB proxy).",
    after_help = AFTER_HELP
)]
struct Args {
    /// Endpoint the XSUB binds; the gateway's PUB connects here.
    #[arg(short, long, value_name = "ENDPOINT", default_value = "ipc:///tmp/nginx_queue_listen",
          value_parser = parse_endpoint)]
    bind: String,
    /// Endpoint the XPUB binds; tracking services' SUBs connect here.
    #[arg(short, long, value_name = "ENDPOINT", default_value = "tcp://0.0.0.0:6001",
          value_parser = parse_endpoint)]
    publish: String,
    /// Print every message flowing through on stdout (see OUTPUT).
    #[arg(short, long)]
    debug: bool,
    /// Self-test mode (see MODES).
    #[arg(short, long)]
    test: bool,
    /// --test: endpoint the SUB of the SUB->PUSH proxy binds.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://0.0.0.0:5000",
          value_parser = parse_endpoint, requires = "test")]
    test_sub_bind: String,
    /// --test: endpoint the PUSH of the SUB->PUSH proxy binds.
    #[arg(long, value_name = "ENDPOINT", default_value = "ipc:///tmp/nginx_queue_push",
          value_parser = parse_endpoint, requires = "test")]
    test_push_bind: String,
    /// --test: milliseconds between the test publisher's messages.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000), requires = "test")]
    test_interval: u64,
    /// Send ZMTP heartbeats (PING) to every peer this often, in milliseconds, and drop a peer
    /// silent for three intervals (default: off).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    heartbeat_ivl: Option<u64>,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Make the XPUB (--publish) a CURVE server with this secret certificate (pyzmq/zmtp-keygen
    /// format; mode 0600). Needs --curve-allowed-certs-dir or --curve-allow-any-key.
    #[arg(long, value_name = "FILE", requires = "curve_clients")]
    curve_secret_key_file: Option<PathBuf>,
    /// With --curve-secret-key-file: accept only subscribers whose public certificate (NAME.key) is
    /// in this directory.
    #[arg(long, value_name = "DIR", group = "curve_clients", requires = "curve_secret_key_file")]
    curve_allowed_certs_dir: Option<PathBuf>,
    /// With --curve-secret-key-file: accept any subscriber key (encryption without authentication).
    #[arg(long, group = "curve_clients", requires = "curve_secret_key_file")]
    curve_allow_any_key: bool,
}

impl Args {
    /// The XPUB's mechanism: the files the CURVE options name, read and checked (an error names the
    /// option).
    fn publish_security(&self) -> Result<PortSecurity, String> {
        let Some(secret) = &self.curve_secret_key_file else { return Ok(PortSecurity::Null) };
        PortSecurity::curve_server(secret, self.curve_allowed_certs_dir.as_deref()).map_err(|e| {
            let option = match e.input {
                Input::AllowedCertsDir => "--curve-allowed-certs-dir",
                _ => "--curve-secret-key-file",
            };
            format!("{option}: {e}")
        })
    }
}

/// Checks that `text` is an endpoint (clap names the option when it is not).
fn parse_endpoint(text: &str) -> Result<String, String> {
    text.parse::<Endpoint>().map(|_| text.to_owned()).map_err(|e| e.to_string())
}

/// A fatal error: printed on stderr, exit status 1.
#[derive(Debug)]
struct Fatal(String);

fn main() -> ExitCode {
    let args = Args::parse();
    // Read before anything else: a file that cannot be used is a bad argument (status 2).
    let security = match args.publish_security() {
        Ok(security) => security,
        Err(message) => {
            eprintln!("zmq-adaptor: error: {message}");
            return ExitCode::from(2);
        }
    };
    init_tracing(args.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(Fatal(format!("cannot start the tokio runtime: {e}"))),
    };
    match runtime.block_on(run(args, security)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => fail(fatal),
    }
}

fn fail(Fatal(message): Fatal) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("zmq-adaptor: error: {message}");
    ExitCode::FAILURE
}

fn init_tracing(json: bool) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => EnvFilter::try_new(&text).unwrap_or_else(|e| {
            eprintln!("zmq-adaptor: ignoring RUST_LOG={text:?} ({e}); using {DEFAULT_LOG}");
            EnvFilter::new(DEFAULT_LOG)
        }),
        _ => EnvFilter::new(DEFAULT_LOG),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// The options of every socket: a short linger, a handshake deadline, the message size cap and,
/// if asked, heartbeats.
fn socket_options(args: &Args) -> Options {
    let heartbeat = args.heartbeat_ivl.map(Duration::from_millis);
    Options {
        linger: Some(LINGER),
        handshake_interval: Some(Duration::from_secs(10)),
        max_msg_size: Some(64 * 1024 * 1024),
        heartbeat_interval: heartbeat,
        heartbeat_timeout: heartbeat.map(|d| d * 3),
        heartbeat_ttl: heartbeat.map(|d| (d * 3).min(Duration::from_secs(60))),
        ..Options::default()
    }
}

/// The termination signals, registered before anything is bound.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn register() -> Result<Signals, Fatal> {
        let register = |kind| signal(kind).map_err(|e| Fatal(format!("cannot handle signals: {e}")));
        Ok(Signals {
            interrupt: register(SignalKind::interrupt())?,
            terminate: register(SignalKind::terminate())?,
        })
    }

    /// The name of the first signal received.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Creates a socket and binds it to the endpoint given for `option`, logging the bound endpoint.
async fn bind(
    kind: SocketType,
    options: &Options,
    option: &str,
    endpoint: &str,
) -> Result<(Socket, String), Fatal> {
    let socket = Socket::with_options(kind, options.clone())
        .map_err(|e| Fatal(format!("cannot create the {kind} socket for {option}: {e}")))?;
    let bound = socket.bind(endpoint).await.map_err(|e| Fatal(format!("{option} {endpoint}: {e}")))?;
    let mechanism = if options.curve_server { "CURVE" } else { "NULL" };
    info!(option, socket = %kind, endpoint = %bound, mechanism, "listening");
    Ok((socket, bound))
}

/// Logs `socket`'s connection events at debug level until it closes.
fn log_events(tasks: &mut Tasks, socket: &Socket, role: &'static str) {
    let mut monitor = socket.monitor();
    tasks.spawn(async move {
        while let Some(event) = monitor.recv().await {
            debug!(socket = role, endpoint = %event.endpoint, event = ?event.kind, "socket event");
        }
        std::future::pending().await
    });
}

/// Forwards from `from` to `to`, printing each message's line (`line`) first: `--debug`'s
/// counterpart of one direction of [`zmtp::proxy`].
async fn forward_printing(
    from: Socket,
    to: Socket,
    line: fn(&zmtp::Msg) -> String,
    printer: Printer,
) -> zmtp::Result<()> {
    loop {
        let msg = from.recv().await?;
        printer.print(line(&msg)).await;
        to.send(msg).await?;
    }
}

/// The tasks every component runs in: each ends only with an error (the message names it).
type Tasks = JoinSet<Result<(), String>>;

/// Names the component an error comes from.
fn named(name: &'static str) -> impl Fn(zmtp::Error) -> String {
    move |e| format!("{name}: {e}")
}

/// Starts the XSUB→XPUB proxy: [`zmtp::proxy`], or with `printer` (`--debug`) one printing loop per
/// direction.
fn spawn_proxy(tasks: &mut Tasks, xsub: &Socket, xpub: &Socket, printer: Option<&Printer>) {
    let (x, p) = (xsub.clone(), xpub.clone());
    let Some(printer) = printer else {
        tasks.spawn(async move { zmtp::proxy(&x, &p, None).await.map_err(named("proxy")) });
        return;
    };
    let down = printer.clone();
    tasks.spawn(async move { forward_printing(x, p, output::data_line, down).await.map_err(named("proxy")) });
    let (x, p, up) = (xsub.clone(), xpub.clone(), printer.clone());
    tasks.spawn(
        async move { forward_printing(p, x, output::upstream_line, up).await.map_err(named("proxy")) },
    );
}

/// `--test`'s own sockets, bound before anything starts.
struct SelfTest {
    /// Bound on `--test-sub-bind`, subscribed to everything.
    sub: Socket,
    /// Bound on `--test-push-bind`.
    push: Socket,
    /// Where `push` is bound.
    push_at: String,
}

impl SelfTest {
    async fn bind(args: &Args, options: &Options) -> Result<SelfTest, Fatal> {
        let (sub, _) = bind(SocketType::Sub, options, "--test-sub-bind", &args.test_sub_bind).await?;
        let (push, push_at) =
            bind(SocketType::Push, options, "--test-push-bind", &args.test_push_bind).await?;
        sub.subscribe("").map_err(|e| Fatal(format!("cannot subscribe the --test-sub-bind SUB: {e}")))?;
        Ok(SelfTest { sub, push, push_at })
    }

    /// Starts the SUB→PUSH proxy, the PULL receiver, the test publisher (connected to `listen_at`)
    /// and the debug subscriber (connected to `publish_at`, with `subscriber_options`: a CURVE client
    /// when the XPUB is a CURVE server). Returns the sockets it made.
    fn spawn(
        self,
        tasks: &mut Tasks,
        (options, subscriber_options): (&Options, &Options),
        (listen_at, publish_at): (&str, &str),
        interval: Duration,
        printer: &Printer,
    ) -> Result<Vec<Socket>, Fatal> {
        let connect = |kind: SocketType, options: &Options, endpoint: &str| {
            Socket::with_options(kind, options.clone())
                .and_then(|s| s.connect(&selftest::local_endpoint(endpoint)).map(|()| s))
                .map_err(|e| Fatal(format!("--test: cannot connect a {kind} to {endpoint}: {e}")))
        };
        let pull = connect(SocketType::Pull, options, &self.push_at)?;
        let publisher = connect(SocketType::Pub, options, listen_at)?;
        let subscriber = connect(SocketType::Sub, subscriber_options, publish_at)?;
        subscriber.subscribe("").map_err(|e| Fatal(format!("--test: cannot subscribe: {e}")))?;
        let made =
            vec![self.sub.clone(), self.push.clone(), pull.clone(), publisher.clone(), subscriber.clone()];

        let (sub, push) = (self.sub, self.push);
        tasks.spawn(
            async move { zmtp::proxy(&sub, &push, None).await.map_err(named("test SUB->PUSH proxy")) },
        );
        let p = printer.clone();
        tasks.spawn(async move {
            selftest::print_received(pull, "> pulled: ", p).await.map_err(named("test PULL"))
        });
        let p = printer.clone();
        tasks
            .spawn(async move { selftest::publish(publisher, interval, p).await.map_err(named("test PUB")) });
        let p = printer.clone();
        tasks.spawn(async move {
            selftest::print_received(subscriber, "> got: ", p).await.map_err(named("test SUB"))
        });
        Ok(made)
    }
}

/// Binds, runs every component until a signal arrives (`Ok`) or one fails (`Err`), then closes.
/// `security` is the XPUB's mechanism.
async fn run(args: Args, security: PortSecurity) -> Result<(), Fatal> {
    let mut signals = Signals::register()?;
    let options = socket_options(&args);
    // The self-test subscriber: a CURVE client with a fresh key that the XPUB accepts.
    let (security, subscriber_options) = match &security {
        PortSecurity::Curve { public, .. } if args.test => {
            let keys = zmtp::curve_keypair().map_err(|e| Fatal(format!("--test: cannot make a key: {e}")))?;
            let subscriber_options = Options {
                curve_secret_key: Some(keys.secret.clone()),
                curve_server_key: Some(*public),
                ..options.clone()
            };
            (security.clone().allow_curve_key(keys.public), subscriber_options)
        }
        _ => (security, options.clone()),
    };
    let publish_options = security.apply(options.clone());
    // Bind everything before starting anything: a bind failure exits before any traffic.
    let (xsub, listen_at) = bind(SocketType::XSub, &options, "--bind", &args.bind).await?;
    let (xpub, publish_at) = bind(SocketType::XPub, &publish_options, "--publish", &args.publish).await?;
    let self_test = if args.test { Some(SelfTest::bind(&args, &options).await?) } else { None };

    let (printer, printer_thread) = if args.debug || args.test {
        let (printer, thread) =
            Printer::start().map_err(|e| Fatal(format!("cannot start the stdout thread: {e}")))?;
        (Some(printer), Some(thread))
    } else {
        (None, None)
    };

    let mut tasks = Tasks::new();
    let mut sockets = vec![xsub.clone(), xpub.clone()];
    log_events(&mut tasks, &xsub, "xsub");
    log_events(&mut tasks, &xpub, "xpub");
    spawn_proxy(&mut tasks, &xsub, &xpub, printer.as_ref().filter(|_| args.debug));
    if let (Some(self_test), Some(printer)) = (self_test, &printer) {
        let interval = Duration::from_millis(args.test_interval);
        let ends = (listen_at.as_str(), publish_at.as_str());
        let options = (&options, &subscriber_options);
        sockets.extend(self_test.spawn(&mut tasks, options, ends, interval, printer)?);
    }
    // From here on only the tasks hold printers: the stdout thread ends once they are stopped.
    drop(printer);

    let outcome = tokio::select! {
        name = signals.recv() => {
            info!(signal = name, "shutting down");
            Ok(())
        }
        Some(ended) = tasks.join_next() => Err(Fatal(match ended {
            Ok(Err(message)) => message,
            Ok(Ok(())) => "a component ended unexpectedly".to_owned(),
            Err(e) => format!("a component failed: {e}"),
        })),
    };

    // Stop every task (dropping their socket handles and printers), then close the sockets.
    tasks.shutdown().await;
    let close = futures::future::join_all(sockets.into_iter().map(Socket::close));
    if tokio::time::timeout(SHUTDOWN_MAX, close).await.is_err() {
        tracing::warn!("sockets did not close within {SHUTDOWN_MAX:?}");
    }
    if let Some(thread) = printer_thread {
        output::finish(thread, SHUTDOWN_MAX).await;
    }
    outcome
}
