//! The channel framing Kubernetes streams over WebSocket
//! (`v4.channel.k8s.io`, `v5.channel.k8s.io`): every binary message starts
//! with one byte naming its channel. Pure: negotiation, message parsing
//! and the `Status` documents sent on the error channel. No IO here.

use serde_json::{json, Value};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// Carries one `metav1.Status` when the session ends.
pub const ERROR: u8 = 3;
/// Terminal size changes, as JSON `{"Width":..,"Height":..}`.
pub const RESIZE: u8 = 4;
/// v5 only: `[CLOSE, channel]` half-closes one channel (stdin's EOF).
pub const CLOSE: u8 = 255;

/// The subprotocols served, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V4,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V5 => "v5.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
        }
    }

    /// The first protocol in the client's list (which is in its order of
    /// preference) that is served; `None` if none is.
    pub fn negotiate(offered: &str) -> Option<Protocol> {
        offered.split(',').map(str::trim).find_map(|p| match p {
            "v5.channel.k8s.io" => Some(Protocol::V5),
            "v4.channel.k8s.io" => Some(Protocol::V4),
            _ => None,
        })
    }
}

/// What a message from the client asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    Data {
        channel: u8,
        data: &'a [u8],
    },
    Resize {
        width: u16,
        height: u16,
    },
    /// The client will send nothing more on `channel` (v5).
    Close {
        channel: u8,
    },
    /// Empty messages and resize documents that do not parse.
    Ignored,
}

pub fn parse(message: &[u8], protocol: Protocol) -> Inbound<'_> {
    let Some((&channel, data)) = message.split_first() else {
        return Inbound::Ignored;
    };
    match channel {
        CLOSE if protocol == Protocol::V5 => match data.first() {
            Some(&c) => Inbound::Close { channel: c },
            None => Inbound::Ignored,
        },
        RESIZE => {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Size {
                width: u16,
                height: u16,
            }
            match serde_json::from_slice::<Size>(data) {
                Ok(s) => Inbound::Resize {
                    width: s.width,
                    height: s.height,
                },
                Err(_) => Inbound::Ignored,
            }
        }
        _ => Inbound::Data { channel, data },
    }
}

/// One outbound message: the channel byte, then the data.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    out
}

/// The error channel's document for a command that ended with `code`:
/// clients turn `NonZeroExitCode` into their own exit status.
pub fn exit_status(command: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The error channel's document for a session that failed before or
/// while running.
pub fn failure(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_first_served_protocol_wins() {
        assert_eq!(
            Protocol::negotiate("v5.channel.k8s.io, v4.channel.k8s.io"),
            Some(Protocol::V5)
        );
        assert_eq!(
            Protocol::negotiate("channel.k8s.io,v4.channel.k8s.io,v5.channel.k8s.io"),
            Some(Protocol::V4)
        );
        assert_eq!(Protocol::negotiate("base64.channel.k8s.io"), None);
    }

    #[test]
    fn messages_are_read_by_their_channel_byte() {
        assert_eq!(
            parse(b"\x00ls\n", Protocol::V4),
            Inbound::Data {
                channel: STDIN,
                data: b"ls\n"
            }
        );
        assert_eq!(
            parse(&frame(RESIZE, b"{not json"), Protocol::V4),
            Inbound::Ignored,
            "a resize that does not parse changes nothing"
        );
        assert_eq!(
            parse(&frame(RESIZE, br#"{"Width":80,"Height":24}"#), Protocol::V4),
            Inbound::Resize {
                width: 80,
                height: 24
            }
        );
        assert_eq!(
            parse(&[CLOSE, STDIN], Protocol::V5),
            Inbound::Close { channel: STDIN }
        );
        // v4 has no close channel: 255 is just an unknown channel there.
        assert!(matches!(
            parse(&[CLOSE, STDIN], Protocol::V4),
            Inbound::Data { channel: 255, .. }
        ));
        assert_eq!(parse(b"", Protocol::V5), Inbound::Ignored);
    }

    #[test]
    fn exit_codes_travel_as_non_zero_exit_code_causes() {
        let cmd = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        let s = exit_status(&cmd, 3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(exit_status(&cmd, 0)["status"], "Success");
    }
}
