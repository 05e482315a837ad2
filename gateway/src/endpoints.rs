//! The gateway's own endpoints under `login.prefix` (default `/_auth`): `login` (GET form,
//! POST), `logout` (POST), `whoami` (GET, JSON) and `check` (forward-auth).

use http::{Request, Response, StatusCode, header};

use crate::request::context::RequestContext;
use crate::request::error::{ProxyError, full_body, plain_response};
use crate::request::{Body, status_response};
use crate::runtime::Runtime;
use crate::server::Gateway;

/// The 403 page.
pub(crate) fn forbidden_page(_rt: &Runtime) -> Response<Body> {
    plain_response(StatusCode::FORBIDDEN, "Forbidden")
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full_body(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

/// Dispatches a request whose normalized path is under the prefix.
pub(crate) async fn handle(
    gw: &Gateway,
    rt: &Runtime,
    ctx: &mut RequestContext,
    req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    let rest = ctx.path[rt.prefix.len()..].to_string();
    match (ctx.method.as_str(), rest.as_str()) {
        ("GET" | "HEAD", "/whoami") => whoami(gw, rt, ctx, &req).await,
        (_, "/whoami") => Ok(status_response(StatusCode::METHOD_NOT_ALLOWED)),
        _ => Ok(status_response(StatusCode::NOT_FOUND)),
    }
}

async fn whoami(
    gw: &Gateway,
    rt: &Runtime,
    ctx: &mut RequestContext,
    req: &Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    crate::request::identify_request(gw, rt, ctx, req.headers()).await?;
    let Some(user) = &ctx.user else {
        ctx.decision = "challenge";
        return Ok(crate::request::challenge::unauthorized(rt));
    };
    ctx.decision = "whoami";
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "username": user.username,
            "email": user.email,
            "name": user.display_name,
            "groups": user.groups,
            "backend": user.backend,
        }),
    ))
}
