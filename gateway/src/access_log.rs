//! Phase 7, **log**: the one structured log line per request. It carries method, normalized
//! path, route, decision, user, backend entry, status, timings and config version — never a
//! password, cookie or token (the context holds none of those, and headers are not logged).

use std::fmt::{self, Write as _};

use auth_core::TraceStep;

use super::request::context::RequestContext;
use super::request::route::RouteDecision;

/// The target of the access line.
const TARGET: &str = "gateway::access";

/// Emits the access line for a finished request (JSON or text per the subscriber installed by
/// `main`; `log.format` picks it).
///
/// Contract: the fields are formatted straight into the subscriber's line buffer (no string
/// is built per field or per trace step), and nothing is done when the line is filtered out.
pub(crate) fn log_request(ctx: &RequestContext, status: u16) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let user = ctx
        .user
        .as_ref()
        .map(|u| u.username.as_str())
        .unwrap_or("-");
    let entry = ctx.user.as_ref().map(|u| u.backend.as_str()).unwrap_or("-");
    tracing::info!(
        target: TARGET,
        method = %ctx.method,
        path = %ctx.path,
        route = %Route(ctx.route.as_ref()),
        decision = ctx.decision,
        user = user,
        identity = ctx.identity.map(|i| i.label()).unwrap_or("-"),
        backend = entry,
        trace = %Trace(&ctx.trace),
        client_ip = %ClientIp(ctx),
        status = status,
        spoofed_headers = ctx.spoofed_headers,
        elapsed_us = ctx.started.elapsed().as_micros() as u64,
        upstream_us = ctx.upstream_elapsed.map(|d| d.as_micros() as u64),
        config_version = ctx.config_version,
        "request"
    );
}

/// The `route` field: the matched route counted from 1, `default`, or `-` before routing.
struct Route<'a>(Option<&'a RouteDecision>);

impl fmt::Display for Route<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(route) => fmt::Display::fmt(route, f),
            None => f.write_str("-"),
        }
    }
}

/// The `client_ip` field: the connection's preformatted address when the client is the peer.
struct ClientIp<'a>(&'a RequestContext);

impl fmt::Display for ClientIp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ctx = self.0;
        if let Some(text) = ctx.client_ip_header().and_then(|v| v.to_str().ok()) {
            return f.write_str(text);
        }
        fmt::Display::fmt(&ctx.client_ip, f)
    }
}

/// The `trace` field: `entry=outcome(NNus)` per chain step, comma-separated.
struct Trace<'a>(&'a [TraceStep]);

impl fmt::Display for Trace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(
                f,
                "{}={}({}us)",
                step.entry,
                step.outcome,
                step.elapsed.as_micros()
            )?;
        }
        Ok(())
    }
}

/// The text line format: tracing-subscriber's default (`Format<Full, SystemTime>`) for every
/// event, with the access line — one per request, so the one that counts — written by a
/// shorter route to the same bytes: the timestamp's date and time are formatted once a second
/// per thread, numbers with `itoa`, strings quoted without the `Debug` machinery when they need
/// no escaping, and no ANSI styling calls (the default makes them even with colours off).
/// Anything else — colours on, a span around the event, another target or level — goes to the
/// default unchanged. A test compares both on the same events, byte for byte.
#[derive(Default)]
pub(crate) struct TextFormat {
    default: tracing_subscriber::fmt::format::Format,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for TextFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if writer.has_ansi_escapes()
            || meta.target() != TARGET
            || *meta.level() != tracing::Level::INFO
            || ctx.event_scope().is_some()
        {
            return self.default.format_event(ctx, writer, event);
        }
        // The line is built in a buffer of this thread's and handed over in one write.
        thread_local! {
            static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let mut build = |line: &mut String| {
            line.clear();
            write_timestamp(line)?;
            // The default: the level right-aligned in 5, then the target.
            line.push_str(" INFO ");
            line.push_str(TARGET);
            line.push_str(": ");
            let mut fields = Fields {
                line: &mut *line,
                first: true,
                result: Ok(()),
            };
            event.record(&mut fields);
            fields.result?;
            line.push('\n');
            writer.write_str(line)
        };
        // A `Display` that logs while the line is built finds the buffer taken: it gets its own.
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => build(&mut line),
            Err(_) => build(&mut String::new()),
        })
    }
}

/// `2026-12-07T12:00:00.123456Z ` as tracing-subscriber's `SystemTime` timer writes it (UTC,
/// microseconds), with the part up to the seconds cached per thread for the current second.
fn write_timestamp(line: &mut String) -> fmt::Result {
    use std::cell::RefCell;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    // Up to 9999-12-31T23:59:59Z, which humantime formats; outside it, the default timer.
    const LAST: u64 = 253_402_300_799;
    let now = SystemTime::now();
    let since = now
        .duration_since(UNIX_EPOCH)
        .ok()
        .filter(|d| d.as_secs() <= LAST);
    let Some(since) = since else {
        use tracing_subscriber::fmt::time::FormatTime;
        let mut text = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut text))?;
        line.push_str(&text);
        line.push(' ');
        return Ok(());
    };
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(cached, prefix)| {
        if *cached != secs {
            prefix.clear();
            let whole = UNIX_EPOCH + Duration::from_secs(secs);
            // `YYYY-MM-DDTHH:MM:SSZ`: keep all but the `Z`.
            fmt::write(
                prefix,
                format_args!("{}", humantime::format_rfc3339_seconds(whole)),
            )?;
            prefix.pop();
            prefix.push('.');
            *cached = secs;
        }
        line.push_str(prefix);
        Ok::<(), fmt::Error>(())
    })?;
    let micros = since.subsec_micros();
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(micros);
    line.push_str(&"000000"[digits.len()..]);
    line.push_str(digits);
    line.push_str("Z ");
    Ok(())
}

/// Writes the fields as tracing-subscriber's `DefaultVisitor` does, without colours: the message
/// bare, then ` name=value`, strings `Debug`-quoted, everything else by `Debug` (the `Visit`
/// defaults send other kinds there; `u64`, the access line's numbers, goes by `itoa`).
struct Fields<'l> {
    line: &'l mut String,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_> {
    /// The separator and `name=`; false when the field is skipped (an earlier write failed, or
    /// a `log.` field of the `log` bridge, which the default skips too).
    fn name(&mut self, field: &tracing::field::Field) -> bool {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        if !std::mem::take(&mut self.first) {
            self.line.push(' ');
        }
        if name != "message" {
            self.line.push_str(name.strip_prefix("r#").unwrap_or(name));
            self.line.push('=');
        }
        true
    }
}

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            // The default escapes ANSI sequences in a message: the one message of this target
            // is the literal `request`, which has none.
            return self.record_debug(field, &format_args!("{value}"));
        }
        if !self.name(field) {
            return;
        }
        // `Debug` for a string escapes `"`, `\` and what is not printable ASCII; without any of
        // them it is the string in quotes.
        let plain = value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        if plain {
            self.line.push('"');
            self.line.push_str(value);
            self.line.push('"');
        } else {
            self.result = write!(self.line, "{value:?}");
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if self.name(field) {
            self.line.push_str(itoa::Buffer::new().format(value));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if self.name(field) {
            self.result = write!(self.line, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn step(entry: &str, outcome: &'static str, micros: u64) -> TraceStep {
        TraceStep {
            entry: entry.into(),
            outcome,
            detail: None,
            elapsed: Duration::from_micros(micros),
        }
    }

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(str::to_owned).collect()
        }
    }

    /// Splits `2026-12-07T12:00:00.123456Z  INFO ...` at the first space; checks the timestamp
    /// is RFC 3339 with microseconds.
    fn without_timestamp(line: &str) -> (std::time::SystemTime, &str) {
        let (stamp, rest) = line.split_once(' ').expect("a timestamp");
        assert_eq!(stamp.len(), 27, "{line}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
            "{line}"
        );
        let time = humantime::parse_rfc3339(stamp).unwrap_or_else(|e| panic!("{line}: {e}"));
        (time, rest)
    }

    fn contexts() -> Vec<RequestContext> {
        use crate::config::model::Access;
        let peer: std::net::SocketAddr = "192.0.2.7:5555".parse().unwrap();
        let plain = RequestContext::new(peer, false, http::Method::GET, 3);
        let mut full = RequestContext::new(peer, true, http::Method::POST, 12);
        full.path = "/reports/2026/q4".into();
        full.route = Some(RouteDecision {
            index: Some(1),
            access: Access::Authenticated,
        });
        full.decision = "allowed";
        let mut user = auth_core::User::new("alice");
        user.backend = "ldap".into();
        full.user = Some(std::sync::Arc::new(user));
        full.identity = Some(super::super::request::context::IdentitySource::Basic);
        full.trace = vec![
            step("ldap", "unavailable", 1500),
            step("local", "authenticated", 7),
        ];
        full.spoofed_headers = 2;
        // The connection's preformatted address (the common case), and a trusted proxy's client.
        full.peer_ip_header = Some(http::HeaderValue::from_static("192.0.2.7"));
        let mut proxied = RequestContext::new(peer, false, http::Method::GET, 3);
        proxied.peer_ip_header = Some(http::HeaderValue::from_static("192.0.2.7"));
        proxied.client_ip = "203.0.113.9".parse().unwrap();
        full.upstream_elapsed = Some(Duration::from_micros(840));
        // Strings the default quotes with escapes: a quote, a backslash, non-ASCII, a control.
        let mut odd = RequestContext::new(
            "[2001:db8::1]:80".parse().unwrap(),
            false,
            http::Method::HEAD,
            0,
        );
        odd.path = "/caf\u{e9}/\"x\"".into();
        odd.route = Some(RouteDecision {
            index: None,
            access: Access::Public,
        });
        let mut user = auth_core::User::new("z\u{f6}e \"q\" \\ \u{7}\u{1b}[31m");
        user.backend = "static".into();
        odd.user = Some(std::sync::Arc::new(user));
        vec![plain, full, odd, proxied]
    }

    #[test]
    fn the_text_format_writes_what_the_default_writes() {
        use tracing_subscriber::layer::SubscriberExt;
        let (ours, theirs) = (Sink::default(), Sink::default());
        let (o, t) = (ours.clone(), theirs.clone());
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .event_format(TextFormat::default())
                    .with_writer(move || o.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || t.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            for (i, ctx) in contexts().iter().enumerate() {
                log_request(ctx, 200 + i as u16 * 101);
            }
            // Other events keep the default's own code, inside a span too.
            tracing::warn!(target: "gateway::reload", path = "/etc/x.yaml", "kept the old config");
            let span = tracing::info_span!("conn", peer = 7);
            span.in_scope(|| log_request(&contexts()[1], 200));
        });
        let (ours, theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 6, "{ours:#?}");
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            let (ta, ra) = without_timestamp(a);
            let (tb, rb) = without_timestamp(b);
            assert_eq!(ra, rb);
            let apart = ta
                .duration_since(tb)
                .or_else(|e| Ok::<_, ()>(e.duration()))
                .unwrap();
            assert!(apart < Duration::from_secs(5), "{a}\n{b}");
        }
        // What the comparison covered.
        assert!(
            ours[1].contains(
                "  INFO gateway::access: request method=POST path=/reports/2026/q4 route=2 \
             decision=\"allowed\" user=\"alice\" identity=\"basic\" backend=\"ldap\" \
             trace=ldap=unavailable(1500us),local=authenticated(7us) client_ip=192.0.2.7 \
             status=301 spoofed_headers=2 elapsed_us="
            ),
            "{}",
            ours[1]
        );
        assert!(
            ours[1].ends_with(" upstream_us=840 config_version=12"),
            "{}",
            ours[1]
        );
        assert!(
            ours[2].contains(r#"user="zöe \"q\" \\ \u{7}\u{1b}[31m""#),
            "{}",
            ours[2]
        );
        assert!(ours[3].contains(" client_ip=203.0.113.9 "), "{}", ours[3]);
        assert!(
            ours[5].contains(" conn{peer=7}: gateway::access: "),
            "{}",
            ours[5]
        );
    }

    #[test]
    fn trace_and_route_fields_keep_their_format() {
        assert_eq!(Trace(&[]).to_string(), "");
        assert_eq!(
            Trace(&[
                step("ldap", "unavailable", 1500),
                step("local", "authenticated", 7)
            ])
            .to_string(),
            "ldap=unavailable(1500us),local=authenticated(7us)"
        );
        assert_eq!(Route(None).to_string(), "-");
    }
}
