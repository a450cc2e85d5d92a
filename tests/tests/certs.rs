//! CURVE certificate files and keys against pyzmq's `zmq.auth` and libzmq's `zmq_curve_public`: each
//! side reads the other's certificates, and both derive the same public keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use zmtp::cert::{self, Certificate};
use zmtp::proto::{curve_public, CurvePublicKey, CurveSecretKey};
use zmtp_interop::{python, TempDir};

/// Runs `python -c script args...` and returns its stdout lines; fails the test if it fails.
fn run_python(script: &str, args: &[&str]) -> Vec<String> {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run python");
    assert!(
        output.status.success(),
        "python failed ({}):\n{}\nstderr:\n{}",
        output.status,
        script,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// What pyzmq's `zmq.auth.load_certificate` reads from `file`: the public key, and the secret key
/// or `None`.
fn pyzmq_load(file: &Path) -> (String, Option<String>) {
    let lines = run_python(
        "import sys, zmq.auth\n\
         public, secret = zmq.auth.load_certificate(sys.argv[1])\n\
         print(public.decode())\n\
         print('None' if secret is None else secret.decode())\n",
        &[path_str(file)],
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    let secret = (lines[1] != "None").then(|| lines[1].clone());
    (lines[0].clone(), secret)
}

/// pyzmq writes a pair (with metadata); we read both files, and find what pyzmq itself reads.
#[test]
fn we_load_pyzmq_certificates() {
    let dir = TempDir::new("certs-py");
    let lines = run_python(
        "import sys, zmq.auth\n\
         public, secret = zmq.auth.create_certificates(sys.argv[1], 'server', \
             metadata={'name': 'the server', 'owner': 'ops@example.com'})\n\
         print(public)\n\
         print(secret)\n",
        &[path_str(dir.path())],
    );
    let [public_file, secret_file] = &lines[..] else { panic!("{lines:?}") };
    assert_eq!(Path::new(public_file), dir.path().join("server.key"));
    assert_eq!(Path::new(secret_file), dir.path().join("server.key_secret"));

    let (py_public, py_secret) = pyzmq_load(Path::new(secret_file));
    let py_secret = py_secret.expect("pyzmq reads its secret key back");

    let public = Certificate::load(public_file).unwrap();
    assert_eq!(public.public.to_z85(), py_public);
    assert_eq!(public.secret, None);
    // pyzmq writes metadata in the secret file only.
    assert!(public.metadata.is_empty(), "{:?}", public.metadata);

    let secret = Certificate::load(secret_file).unwrap();
    assert_eq!(secret.public.to_z85(), py_public);
    assert_eq!(secret.secret.as_ref().unwrap().to_z85(), py_secret);
    assert_eq!(curve_public(secret.secret.as_ref().unwrap()), secret.public);
    assert_eq!(
        secret.metadata,
        [("name".to_owned(), "the server".to_owned()), ("owner".to_owned(), "ops@example.com".to_owned())]
    );

    // pyzmq leaves the secret file at the umask's mode; once it is 0600, load_secret takes it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(cert::load_secret(secret_file).unwrap(), secret);

    // The allow list: pyzmq's load_certificates and our load_public_keys agree.
    run_python(
        "import sys, zmq.auth\nzmq.auth.create_certificates(sys.argv[1], 'client')\n",
        &[path_str(dir.path())],
    );
    let mut py_keys = run_python(
        "import sys, zmq.auth\n\
         for key in zmq.auth.load_certificates(sys.argv[1]): print(key.decode())\n",
        &[path_str(dir.path())],
    );
    py_keys.sort();
    let mut ours: Vec<String> =
        cert::load_public_keys(dir.path()).unwrap().iter().map(CurvePublicKey::to_z85).collect();
    ours.sort();
    assert_eq!(ours, py_keys);
    assert_eq!(ours.len(), 2);
}

/// We write a pair (with metadata); pyzmq reads both files and finds our keys.
#[test]
fn pyzmq_loads_our_certificates() {
    let dir = TempDir::new("certs-ours");
    let (public_file, secret_file) = cert::create_certificates(dir.path(), "client").unwrap();
    let ours = cert::load_secret(&secret_file).unwrap();
    let secret_z85 = ours.secret.as_ref().unwrap().to_z85();

    assert_eq!(pyzmq_load(&public_file), (ours.public.to_z85(), None));
    assert_eq!(pyzmq_load(&secret_file), (ours.public.to_z85(), Some(secret_z85.clone())));

    // With metadata (quoted values, one with a `"`), pyzmq still reads the keys.
    let mut with_metadata = ours.clone();
    with_metadata.metadata = vec![
        ("name".to_owned(), "the \"client\" # 1".to_owned()),
        ("email".to_owned(), "ops@example.com".to_owned()),
    ];
    let public_file = dir.path().join("meta.key");
    let secret_file = dir.path().join("meta.key_secret");
    with_metadata.save_public(&public_file).unwrap();
    with_metadata.save_secret(&secret_file).unwrap();
    assert_eq!(pyzmq_load(&public_file), (ours.public.to_z85(), None));
    assert_eq!(pyzmq_load(&secret_file), (ours.public.to_z85(), Some(secret_z85)));
    assert_eq!(Certificate::load(&secret_file).unwrap(), with_metadata);

    // And its allow list reads our directory as we do.
    let mut py_keys = run_python(
        "import sys, zmq.auth\n\
         for key in zmq.auth.load_certificates(sys.argv[1]): print(key.decode())\n",
        &[path_str(dir.path())],
    );
    py_keys.sort();
    py_keys.dedup();
    assert_eq!(py_keys, [ours.public.to_z85()]);
    assert_eq!(cert::load_public_keys(dir.path()).unwrap(), [ours.public]);
}

/// libzmq's `zmq_curve_public` (via pyzmq) and our `curve_public` agree, both ways: on secrets we
/// generate, and on pairs libzmq generates.
#[test]
fn curve_public_matches_libzmq() {
    let secrets: Vec<CurveSecretKey> = (0..8).map(|_| CurveSecretKey::generate().unwrap()).collect();
    let mut args: Vec<String> = secrets.iter().map(CurveSecretKey::to_z85).collect();
    // The fixed pairs of ../shared/bench/README.md too.
    args.push("CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP".to_owned());
    args.push(")FimV5Q9q[a+.pe7>!fHPlt[<Bvw{.y?1J@=+2mh".to_owned());
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let publics = run_python(
        "import sys, zmq\n\
         for secret in sys.argv[1:]: print(zmq.curve_public(secret.encode()).decode())\n",
        &arg_refs,
    );
    assert_eq!(publics.len(), args.len());
    for (secret, public) in args.iter().zip(&publics) {
        let ours = curve_public(&CurveSecretKey::from_z85(secret).unwrap());
        assert_eq!(&ours.to_z85(), public);
    }
    assert_eq!(publics[8], "+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo");
    assert_eq!(publics[9], "ofpH?!@pbQNQvvj0iGs&X./%u!FXkBB}VV:GTEvS");

    let pairs = run_python(
        "import zmq\n\
         for _ in range(8):\n    public, secret = zmq.curve_keypair()\n    print(public.decode(), secret.decode())\n",
        &[],
    );
    assert_eq!(pairs.len(), 8);
    for pair in pairs {
        let (public, secret) = pair.split_once(' ').unwrap();
        let secret = CurveSecretKey::from_z85(secret).unwrap();
        assert_eq!(curve_public(&secret).to_z85(), public);
        assert_eq!(CurvePublicKey::from_z85(public).unwrap(), secret.public_key());
    }
}
