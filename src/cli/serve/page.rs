//! The page: static HTML, CSS and JavaScript compiled into the binary (nothing is fetched
//! from elsewhere, and there is no build step).

/// `GET /`.
pub const INDEX_HTML: &str = include_str!("page/index.html");
/// `GET /app.js`.
pub const APP_JS: &str = include_str!("page/app.js");
/// `GET /style.css`.
pub const STYLE_CSS: &str = include_str!("page/style.css");
