//! `authgate health`: probe a running gateway's `/healthz` (or any admin URL), for a container
//! `HEALTHCHECK` in an image that has no curl. Exit 0 on a 2xx answer, 1 otherwise.

use std::io::Write;
use std::time::Duration;

use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long the whole probe may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// GETs `url` (plain `http://`) and prints its status; 0 when it is 2xx, 1 otherwise.
pub(crate) fn health(url: &str, out: &mut dyn Write) -> Result<u8, super::CliError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| super::CliError::Message(format!("`{url}` is not a URL: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(super::CliError::Message(format!(
            "`{url}`: only http:// URLs (the admin listener is plain HTTP)"
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        tokio::time::timeout(TIMEOUT, client.get(uri)).await
    });
    match answer {
        Ok(Ok(response)) if response.status().is_success() => {
            writeln!(out, "{url}: {}", response.status())?;
            Ok(0)
        }
        Ok(Ok(response)) => {
            eprintln!("{url}: {}", response.status());
            Ok(1)
        }
        Ok(Err(e)) => {
            eprintln!("{url}: {e}");
            Ok(1)
        }
        Err(_) => {
            eprintln!("{url}: no answer within {}s", TIMEOUT.as_secs());
            Ok(1)
        }
    }
}
