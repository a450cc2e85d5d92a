//! Socket semantics over real loopback transports, our sockets on both ends.

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Error, Msg, Options, Socket, SocketType};

fn msg(frames: &[&'static str]) -> Msg {
    Msg::from(frames.iter().map(|f| Bytes::from_static(f.as_bytes())).collect::<Vec<_>>())
}

fn strings(m: &Msg) -> Vec<String> {
    m.frames().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()
}

async fn recv_timeout(s: &Socket) -> Msg {
    tokio::time::timeout(Duration::from_secs(10), s.recv()).await.expect("timed out").expect("recv")
}

#[tokio::test]
async fn req_rep_over_tcp() {
    let rep = Socket::new(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();
    let req = Socket::new(SocketType::Req).unwrap();
    req.connect(&ep).unwrap();
    for i in 0..10 {
        req.send(format!("hello {i}").into_bytes()).await.unwrap();
        let got = recv_timeout(&rep).await;
        assert_eq!(strings(&got), [format!("hello {i}")]);
        rep.send(msg(&["world"])).await.unwrap();
        assert_eq!(strings(&recv_timeout(&req).await), ["world"]);
    }
    assert!(matches!(req.try_recv(), Err(Error::InvalidState(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_many_messages() {
    let pull = Socket::new(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:*").await.unwrap();
    let push = Socket::new(SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    let n = 100_000u32;
    let sender = tokio::spawn(async move {
        for i in 0..n {
            push.send(Bytes::from(i.to_be_bytes().to_vec())).await.unwrap();
        }
        push
    });
    for i in 0..n {
        let m = recv_timeout(&pull).await;
        assert_eq!(m.frames()[0][..], i.to_be_bytes());
    }
    sender.await.unwrap();
}

#[tokio::test]
async fn dealer_router_identities() {
    let router = Socket::new(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:*").await.unwrap();
    let named = Socket::with_options(
        SocketType::Dealer,
        Options { routing_id: Some(Bytes::from_static(b"named")), ..Options::default() },
    )
    .unwrap();
    named.connect(&ep).unwrap();
    named.send(msg(&["a", "b"])).await.unwrap();
    let got = recv_timeout(&router).await;
    assert_eq!(strings(&got), ["named", "a", "b"]);
    router.send(msg(&["named", "reply"])).await.unwrap();
    assert_eq!(strings(&recv_timeout(&named).await), ["reply"]);

    let anon = Socket::new(SocketType::Dealer).unwrap();
    anon.connect(&ep).unwrap();
    anon.send(msg(&["x"])).await.unwrap();
    let got = recv_timeout(&router).await;
    assert_eq!(got.frames()[0].len(), 5);
    assert_eq!(got.frames()[0][0], 0);
}
