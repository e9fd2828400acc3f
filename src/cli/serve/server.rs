//! The HTTP side: routes, bounded bodies, JSON errors, and a clean stop on Ctrl-C.

use super::api::{self, ApiError, AppState};
use super::page;
use super::workers::JobError;
use crate::cli::error::{CliError, CliResult};
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The largest request body read (4 MiB): a 3x224x224 float input as JSON is under 2 MiB.
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// Requests handled at once, bodies included; more wait on their connections, unread, for
/// a free slot, so memory stays below this many bodies whatever the burst.
pub const MAX_IN_FLIGHT: usize = 32;
/// How long a request body may take to arrive: a stalled client gives its slot back.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stop waits for running requests before leaving anyway.
const STOP_GRACE: Duration = Duration::from_secs(5);

type Shared = Arc<AppState>;

/// A JSON answer.
fn json(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `{"error": message}` with the error's status.
fn error(e: ApiError) -> Response {
    json(
        e.status,
        serde_json::json!({ "error": e.message }).to_string(),
    )
}

/// A static file of the page.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// Reads the whole body, refusing one above [`MAX_BODY_BYTES`] (by its declared length
/// before reading anything, else as soon as it grows past the limit).
async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || ApiError {
        status: 413,
        message: format!("request body larger than {MAX_BODY_BYTES} bytes"),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(ApiError {
            status: 408,
            message: format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// Runs `f` on the worker pool and answers with its JSON or its error.
async fn on_worker(
    state: Shared,
    f: impl FnOnce(&AppState) -> Result<serde_json::Value, ApiError> + Send + 'static,
) -> Response {
    let shared = Arc::clone(&state);
    // Serialised on the worker too: the async threads only move bytes.
    let job = state
        .workers
        .submit(move || f(&shared).map(|v| v.to_string()));
    let answer = match job {
        Ok(answer) => answer.await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(Ok(body)) => json(200, body),
        Ok(Err(e)) => error(e),
        Err(JobError::Busy) => error(ApiError {
            status: 503,
            message: "the server is busy: try again shortly".into(),
        }),
        Err(JobError::Panicked) => error(ApiError::internal(
            "internal error while answering (reported on the server's stderr)",
        )),
    }
}

/// A POST endpoint: bounded body, then `f` on a worker.
async fn post_json(
    state: Shared,
    headers: HeaderMap,
    body: Body,
    f: fn(&AppState, &[u8]) -> Result<serde_json::Value, ApiError>,
) -> Response {
    let bytes = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(e) => return error(e),
    };
    on_worker(state, move |s| f(s, &bytes)).await
}

/// The value of `key` in a query string, parsed; absent is `None`, malformed a 400.
fn query_value<T: std::str::FromStr>(
    query: &Option<String>,
    key: &str,
) -> Result<Option<T>, ApiError> {
    let Some(q) = query else { return Ok(None) };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            return v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad(format!("query parameter {key}: cannot read '{v}'")));
        }
    }
    Ok(None)
}

async fn digit(State(state): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let args = (|| Ok((query_value(&q, "class")?, query_value(&q, "index")?)))();
    match args {
        Ok((class, index)) => {
            on_worker(state, move |_| {
                api::digit(class.unwrap_or(0), index.unwrap_or(0))
            })
            .await
        }
        Err(e) => error(e),
    }
}

async fn composite(State(state): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let args = (|| {
        let left: Option<usize> = query_value(&q, "left")?;
        let right: Option<usize> = query_value(&q, "right")?;
        let pair = match (left, right) {
            (Some(l), Some(r)) => Some((l, r)),
            (None, None) => None,
            _ => return Err(ApiError::bad("give both left and right, or neither")),
        };
        Ok((pair, query_value(&q, "index")?, query_value(&q, "seed")?))
    })();
    match args {
        Ok((pair, index, seed)) => {
            on_worker(state, move |_| {
                api::composite(pair, index.unwrap_or(0), seed.unwrap_or(0))
            })
            .await
        }
        Err(e) => error(e),
    }
}

/// The routes.
fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", page::INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", page::APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", page::STYLE_CSS) }),
        )
        .route(
            "/api/models",
            get(|State(s): State<Shared>| async move { json(200, api::models(&s).to_string()) }),
        )
        .route(
            "/api/methods",
            get(|| async { json(200, api::methods().to_string()) }),
        )
        .route(
            "/api/explain",
            post(|State(s): State<Shared>, h: HeaderMap, b: Body| post_json(s, h, b, api::explain)),
        )
        .route(
            "/api/predict",
            post(|State(s): State<Shared>, h: HeaderMap, b: Body| {
                post_json(s, h, b, api::predict_answer)
            }),
        )
        .route("/api/digit", get(digit))
        .route("/api/composite", get(composite))
        .route(
            "/api/photos",
            get(|| async { json(200, api::photos().to_string()) }),
        )
        .route(
            "/api/photos/{name}",
            get(
                |State(s): State<Shared>, UrlPath(name): UrlPath<String>| async move {
                    on_worker(s, move |_| api::photo(&name)).await
                },
            ),
        )
        .fallback(|| async {
            error(ApiError {
                status: 404,
                message: "no such page or endpoint".into(),
            })
        })
        .method_not_allowed_fallback(|| async {
            error(ApiError {
                status: 405,
                message: "method not allowed here".into(),
            })
        })
        // One limit shared by every route (a per-route limit would multiply it).
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_IN_FLIGHT,
        ))
        .with_state(state)
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Binds `host:port`, prints the address, and serves `state` until a stop signal.
pub fn serve(host: IpAddr, port: u16, state: AppState) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(host, port))
            .await
            .map_err(|e| CliError::input(format!("cannot listen on {host}:{port}: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| CliError::internal(format!("no local address: {e}")))?;
        if !host.is_loopback() {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("note: listening on {host}: other machines can reach this server\n")
                    .as_bytes(),
            );
        }
        outln!("listening on http://{address}/ (Ctrl-C stops)");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server =
            axum::serve(listener, router(Arc::new(state))).with_graceful_shutdown(async move {
                let mut stopped = stopped;
                let _ = stopped.changed().await;
            });
        let server = tokio::spawn(std::future::IntoFuture::into_future(server));
        stop_signal().await;
        let _ = stop.send(true);
        // Running requests may finish; a connection that stays open does not hold the stop.
        let _ = tokio::time::timeout(STOP_GRACE, server).await;
        outln!("stopped");
        Ok(())
    })
}
