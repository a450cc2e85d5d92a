//! CURVE (RFC 26) in a few lines: an encrypted REQ/REP pair where the server admits only the client
//! keys it knows. Run with `cargo run -p zmtp --example curve`.
//!
//! Keys for real deployments come from `zmtp-keygen --out DIR NAME` (pyzmq's certificate format) and
//! are loaded with `zmtp::cert::load_secret` / `zmtp::cert::load_public_keys`.

use zmtp::auth::AuthPolicy;
use zmtp::{curve_keypair, Options, Socket, SocketType};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server_keys = curve_keypair()?;
    let client_keys = curve_keypair()?;

    // The server: its secret key, and who may connect.
    let server = Socket::with_options(
        SocketType::Rep,
        Options {
            curve_server: true,
            curve_secret_key: Some(server_keys.secret.clone()),
            authenticator: Some(AuthPolicy::new().allow_curve_key(client_keys.public).into_shared()),
            ..Options::default()
        },
    )?;
    let endpoint = server.bind("tcp://127.0.0.1:*").await?;

    // The client: its own key pair, and the server's public key.
    let client = Socket::with_options(
        SocketType::Req,
        Options {
            curve_secret_key: Some(client_keys.secret.clone()),
            curve_server_key: Some(server_keys.public),
            ..Options::default()
        },
    )?;
    client.connect(&endpoint)?;

    client.send("hello").await?;
    let request = server.recv().await?;
    println!("server got {:?} from user {:?}", request.frames()[0], request.user_id());
    server.send("world").await?;
    println!("client got {:?}", client.recv().await?.frames()[0]);
    Ok(())
}
