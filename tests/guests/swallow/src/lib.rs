//! Adversarial guest: makes one call the sandbox refuses, ignores the refusal and
//! claims a pass. Config `what`: `write` (a file in the read-only workspace),
//! `read-outside` (`/etc/passwd`), `dotdot` (`../x` from the workspace), `socket`
//! (a TCP connection through `wasi:sockets`), `lookup` (a name lookup), `udp`,
//! `exec` (`touch`, not granted), `http` (`http://127.0.0.1:9/`, not granted).
use kazi_sdk::prelude::*;
use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};

struct Swallow;

impl Predicate for Swallow {
    fn describe() -> Description {
        Description {
            name: "swallow".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "ignores a refused call".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, _cx: &Context) -> Result<Verdict> {
        let what = config.require_str("what")?;
        let outcome = match what {
            "write" => format!("{:?}", std::fs::write("/workspace/swallowed.txt", "x")),
            "read-outside" => format!("{:?}", std::fs::read("/etc/passwd").map(|b| b.len())),
            "dotdot" => format!("{:?}", std::fs::read("../x").map(|b| b.len())),
            "socket" => {
                let network = wasip2::sockets::instance_network::instance_network();
                match wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
                    Ok(s) => format!(
                        "{:?}",
                        s.start_connect(
                            &network,
                            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                                port: 9,
                                address: (127, 0, 0, 1),
                            }),
                        )
                    ),
                    Err(e) => format!("{e:?}"),
                }
            }
            "udp" => format!(
                "{:?}",
                wasip2::sockets::udp_create_socket::create_udp_socket(IpAddressFamily::Ipv4)
                    .map(|_| ())
            ),
            "lookup" => {
                let network = wasip2::sockets::instance_network::instance_network();
                format!(
                    "{:?}",
                    wasip2::sockets::ip_name_lookup::resolve_addresses(&network, "example.com")
                        .map(|_| ())
                )
            }
            "exec" => format!(
                "{:?}",
                exec::Command::new("touch")
                    .arg("swallowed")
                    .run()
                    .map(|_| ())
            ),
            "http" => {
                use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
                let r = OutgoingRequest::new(Fields::new());
                let _ = r.set_scheme(Some(&Scheme::Http));
                let _ = r.set_authority(Some("127.0.0.1:9"));
                let _ = r.set_path_with_query(Some("/"));
                match wasip2::http::outgoing_handler::handle(r, None) {
                    Ok(f) => {
                        f.subscribe().block();
                        format!("{:?}", f.get().map(|r| r.map(|r| r.map(|r| r.status()))))
                    }
                    Err(e) => format!("{e:?}"),
                }
            }
            other => return Err(Error::new(format!("unknown `what`: {other}"))),
        };
        Ok(Verdict::pass(format!(
            "{what}: ignored {outcome} and passed"
        )))
    }
}

export_predicate!(Swallow);
