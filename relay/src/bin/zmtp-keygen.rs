//! The `zmtp-keygen` binary: makes CURVE key pairs (libzmq's `curve_keygen`, pyzmq's
//! `zmq.auth.create_certificates`) and shows the public key of a secret certificate. See `--help`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use zmtp::cert::{self, CertError};
use zmtp::proto::{curve_keypair, CurvePublicKey};

const AFTER_HELP: &str = "\
MODES:
  zmtp-keygen
            prints a new key pair in Z85, as libzmq's curve_keygen makes:
              public-key = \"<40 characters>\"
              secret-key = \"<40 characters>\"
            (quoted, so that the lines can be pasted into a certificate or a TOML file).
  zmtp-keygen --out DIR NAME
            writes a new key pair as DIR/NAME.key (the public certificate, for peers' allow lists)
            and DIR/NAME.key_secret (the secret certificate, mode 0600), in the ZPL format of
            pyzmq's zmq.auth and czmq's zcert, and prints the two paths, public first. Existing
            files are not replaced without --force. DIR must exist.
  zmtp-keygen --public-from SECRET_FILE
            prints the public key of a secret certificate (public-key = \"...\"). The file must
            not be readable or writable by group or others (chmod 600), as ssh requires.

EXIT STATUS:
  0 on success; 1 if the operating system gives no randomness; 2 for bad arguments or a file
  that cannot be read, written or trusted (the message names it).";

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "zmtp-keygen",
    version,
    about = "Makes CURVE key pairs and certificates (Z85, pyzmq/czmq certificate files).",
    after_help = AFTER_HELP
)]
struct Args {
    /// Write NAME.key and NAME.key_secret into DIR instead of printing the keys.
    #[arg(long, value_name = "DIR", requires = "name", conflicts_with = "public_from")]
    out: Option<PathBuf>,

    /// The certificate name for --out (the files are NAME.key and NAME.key_secret).
    #[arg(value_name = "NAME", requires = "out")]
    name: Option<String>,

    /// With --out: replace existing certificate files.
    #[arg(long, requires = "out")]
    force: bool,

    /// Print the public key of this secret certificate file.
    #[arg(long, value_name = "SECRET_FILE")]
    public_from: Option<PathBuf>,
}

/// Why the program failed, and its exit status.
enum Failure {
    /// Bad arguments or a file problem: exit status 2.
    Usage(String),
    /// No randomness: exit status 1.
    Random(String),
}

impl From<CertError> for Failure {
    fn from(e: CertError) -> Self {
        match e {
            CertError::Random { .. } => Failure::Random(e.to_string()),
            other => Failure::Usage(other.to_string()),
        }
    }
}

fn main() -> ExitCode {
    // clap exits with status 2 on bad arguments (0 for --help and --version).
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("zmtp-keygen: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Random(message)) => {
            eprintln!("zmtp-keygen: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    if let Some(secret_file) = &args.public_from {
        let cert = cert::load_secret(secret_file)?;
        return emit(&[&public_line(&cert.public)]);
    }
    if let (Some(dir), Some(name)) = (&args.out, &args.name) {
        return write_pair(dir, name, args.force);
    }
    let pair = curve_keypair().map_err(|e| Failure::Random(format!("cannot generate a key: {e}")))?;
    let secret = format!("secret-key = \"{}\"", pair.secret.to_z85());
    emit(&[&public_line(&pair.public), &secret])
}

/// `--out DIR NAME`: writes the certificate pair and prints the paths.
fn write_pair(dir: &Path, name: &str, force: bool) -> Result<(), Failure> {
    if !dir.is_dir() {
        return Err(Failure::Usage(format!("{} is not a directory", dir.display())));
    }
    if !force {
        for extension in [cert::PUBLIC_EXTENSION, cert::SECRET_EXTENSION] {
            let path = dir.join(format!("{name}.{extension}"));
            // symlink_metadata: a dangling link is there too.
            if path.symlink_metadata().is_ok() {
                return Err(Failure::Usage(format!("{} exists (use --force to replace it)", path.display())));
            }
        }
    }
    let (public, secret) = cert::create_certificates(dir, name)?;
    emit(&[&public.display().to_string(), &secret.display().to_string()])
}

/// `public-key = "<z85>"`.
fn public_line(public: &CurvePublicKey) -> String {
    format!("public-key = \"{}\"", public.to_z85())
}

/// Writes `lines` to stdout (a closed stdout is an error, not a panic).
fn emit(lines: &[&str]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    lines
        .iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Usage(format!("cannot write to stdout: {e}")))
}
