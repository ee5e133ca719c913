//! The storage endpoints of both surfaces and the admin's, declared once for the router and
//! the document. Uploads take their bodies unbounded by the JSON body limit: each bucket's
//! `max_size_bytes` (and the server's `MAX_UPLOAD_BYTES`) bound them while they stream.

use axum::extract::DefaultBodyLimit;
use serde_json::{Value as Json, json};

use super::operation::{Access, Op, any_object, array, boolean, header, integer, object, query, schema_ref, string};
use crate::http::storage::{buckets, files, objects, resumable, signed};

fn file() -> Json {
    schema_ref("File")
}

fn bucket() -> Json {
    schema_ref("Bucket")
}

fn bytes_answer(description: &str) -> Json {
    json!({
        "description": description,
        "headers": {
            "ETag": {"schema": {"type": "string"}},
            "Content-Disposition": {"schema": {"type": "string"}},
            "Accept-Ranges": {"schema": {"type": "string"}},
        },
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    })
}

fn upload_form() -> Json {
    json!({"required": true, "content": {"multipart/form-data": {"schema": object(
        &[
            ("file", json!({"type": "string", "format": "binary"})),
            ("bucket", json!({"type": "string", "default": "default"})),
            ("is_public", boolean()),
            ("collection", string()),
            ("record_id", string()),
        ],
        &["file"],
    )}}})
}

/// A download's `HEAD`: its parameters, and the headers it answers.
fn head_answers(op: Op) -> Op {
    op.params(download_params())
        .answer(200, json!({"description": "The headers a GET would send"}))
        .answer(206, json!({"description": "The headers of the asked range"}))
        .answer(304, json!({"description": "Not modified"}))
        .errors(&[412, 416])
}

fn download_params() -> Vec<Json> {
    vec![
        query("token", string(), "a signed URL's token: no credentials needed"),
        query("download", boolean(), "`Content-Disposition: attachment` instead of `inline`"),
        header("Range", string(), "one byte range, `bytes=first-last`, `bytes=first-` or `bytes=-count`"),
        header("If-None-Match", string(), "ETags: 304 when one still matches"),
        header(
            "If-Modified-Since",
            string(),
            "an HTTP date: 304 when the file has not changed since (without If-None-Match)",
        ),
        header("If-Match", string(), "ETags: 412 unless one matches (strong comparison)"),
        header("If-Unmodified-Since", string(), "an HTTP date: 412 when the file changed since (without If-Match)"),
        header("If-Range", string(), "an ETag or HTTP date: the Range applies only to that version"),
    ]
}

/// Every storage endpoint.
pub fn storage_ops() -> Vec<Op> {
    let mut ops = file_ops();
    ops.extend(object_ops());
    ops.extend(bucket_ops());
    ops.extend(resumable_ops());
    ops
}

fn unbounded(op: Op) -> Op {
    op.wrap(|handler| handler.layer(DefaultBodyLimit::disable()))
}

fn file_ops() -> Vec<Op> {
    let s = "/api/v1/storage";
    let page = object(
        &[("items", array(file())), ("total", integer()), ("page", integer()), ("limit", integer())],
        &["items", "total", "page", "limit"],
    );
    let paging = [query("page", integer(), "1-based page"), query("limit", integer(), "page size (1–500)")];
    let deleted = object(&[("deleted", boolean()), ("id", string())], &["deleted", "id"]);
    vec![
        unbounded(
            Op::new("post", format!("{s}/upload"), "Storage", "Upload a file (multipart form)")
                .handler(files::upload)
                .access(Access::User)
                .describe("The file's owner is the caller. With `?token=` from `POST /storage/sign`, no credentials are needed. A file with `collection` and `record_id` belongs to that record (the caller must be allowed to update it): its readers may read the file, and deleting the record for good deletes it.")
                .params([query("token", string(), "a signed upload URL's token")])
                .request_body(upload_form())
                .ok(201, file())
                .errors(&[403, 404, 409, 413, 415]),
        ),
        Op::new("get", s, "Storage", "The caller's files, newest first")
            .handler(files::list_mine)
            .access(Access::User)
            .params(paging.clone())
            .ok(200, page.clone()),
        Op::new("post", format!("{s}/sign"), "Storage", "A signed upload URL")
            .handler(signed::sign_upload)
            .access(Access::User)
            .describe("A URL that lets a client without credentials upload one file, once, before `expires_in` seconds pass, into `bucket` and within `max_size_bytes` and `mime_type` (a pattern such as `image/*`). The same token starts one resumable upload instead: `resumable_url`.")
            .body(object(
                &[
                    ("bucket", string()),
                    ("key", string()),
                    ("mime_type", string()),
                    ("max_size_bytes", integer()),
                    ("expires_in", integer()),
                    ("is_public", boolean()),
                    ("collection", string()),
                    ("record_id", string()),
                    ("upsert", boolean()),
                ],
                &[],
            ))
            .errors(&[404])
            .ok(
                200,
                object(
                    &[
                        ("url", string()),
                        ("resumable_url", string()),
                        ("method", string()),
                        ("expires_in", integer()),
                        ("expires_at", integer()),
                    ],
                    &["url", "expires_in"],
                ),
            ),
        Op::new("get", format!("{s}/{{id}}"), "Storage", "Download a file by id, or list a bucket")
            .handler(files::get_one)
            .access(Access::Optional)
            .describe("When `id` is a file id (a UUID), the file's bytes: public files to anyone, private ones to their owner, the admin and the readers of the record they belong to. Any other name is a bucket (tables surface): its files in key order, those the caller may see, filtered by `prefix`, paged by `limit` and `offset`.")
            .params(download_params())
            .params([
                query("prefix", string(), "bucket listing: keys starting with this"),
                query("limit", integer(), "bucket listing: at most this many (1–1000, default 100)"),
                query("offset", integer(), "bucket listing: skip this many"),
            ])
            .answer(200, bytes_answer("The file (or, for a bucket, a JSON array of files)"))
            .answer(206, bytes_answer("The asked range of the file"))
            .answer(304, json!({"description": "Not modified"}))
            .errors(&[412, 416]),
        head_answers(
            Op::new("head", format!("{s}/{{id}}"), "Storage", "A file's headers by id, without its bytes")
                .handler(files::head_one)
                .access(Access::Optional),
        ),
        Op::new("delete", format!("{s}/{{id}}"), "Storage", "Delete a file by id")
            .handler(files::delete)
            .access(Access::User)
            .ok(200, deleted.clone())
            .errors(&[403]),
        Op::new("get", "/api/v1/admin/storage", "Admin", "Every file, newest first")
            .handler(files::admin_list)
            .access(Access::Admin)
            .params(paging)
            .params([query("bucket", string(), "only this bucket's files")])
            .ok(200, page),
        unbounded(
            Op::new("post", "/api/v1/admin/storage/upload", "Admin", "Upload a file without an owner")
                .handler(files::admin_upload)
                .access(Access::Admin)
                .request_body(upload_form())
                .ok(201, file())
                .errors(&[404, 409, 413, 415]),
        ),
        Op::new("delete", "/api/v1/admin/storage/{id}", "Admin", "Delete any file")
            .handler(files::admin_delete)
            .access(Access::Admin)
            .ok(200, deleted),
    ]
}

fn object_ops() -> Vec<Op> {
    let path = "/api/v1/storage/{bucket}/{key}";
    let routed = "/api/v1/storage/{bucket}/{*key}";
    let raw = json!({"required": true, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": any_object()},
    }});
    vec![
        unbounded(
            Op::new("post", path, "Storage", "Upload a file to a key")
                .handler(objects::post)
                .routed_at(routed)
                .access(Access::User)
                .describe("The body is the file (its `Content-Type` declared) or a multipart form whose first file part is. Keys may contain `/`. An existing key is replaced only with `x-upsert: true`, and only by its owner or the admin. With `?token=` from a signed upload URL, no credentials are needed.")
                .params([
                    header("x-upsert", string(), "`true` replaces an existing file"),
                    query("token", string(), "a signed upload URL's token"),
                ])
                .request_body(raw)
                .ok(201, file())
                .errors(&[403, 404, 409, 413, 415]),
        ),
        Op::new("get", path, "Storage", "Download a file by bucket and key")
            .handler(files::get_two)
            .routed_at(routed)
            .access(Access::Optional)
            .describe("Also `GET /storage/{id}/{filename}` on the collections surface (the filename only names the download). Public files to anyone; private ones to their owner, the admin, readers of their record, or with a signed URL's `token`.")
            .params(download_params())
            .answer(200, bytes_answer("The file"))
            .answer(206, bytes_answer("The asked range of the file"))
            .answer(304, json!({"description": "Not modified"}))
            .errors(&[412, 416]),
        head_answers(
            Op::new("head", path, "Storage", "A file's headers, without its bytes")
                .handler(files::head_two)
                .routed_at(routed)
                .access(Access::Optional),
        ),
        Op::new("delete", path, "Storage", "Delete a file by bucket and key")
            .handler(objects::delete)
            .routed_at(routed)
            .access(Access::User)
            .describe("When the first segment is a file id (`/storage/{id}/{filename}`), the file by id, answered as `DELETE /storage/{id}` answers.")
            .answer(204, json!({"description": "Deleted"}))
            .ok(200, object(&[("deleted", boolean()), ("id", string())], &["deleted", "id"]))
            .errors(&[403]),
        // Served by the upload route above, whose last key segment `signed-url` selects this.
        Op::new("post", format!("{path}/signed-url"), "Storage", "A signed download URL")
            .access(Access::Optional)
            .describe("For a signed-in reader of the file, or the admin: a URL that downloads it without credentials until it expires (at most 7 days, MAX_SIGNED_URL_SECONDS), while its signer may still read the file.")
            .body(object(&[("expires_in", integer())], &[]))
            .ok(200, object(&[("signed_url", string()), ("expires_in", integer())], &["signed_url", "expires_in"])),
    ]
}

fn bucket_ops() -> Vec<Op> {
    let settings = object(
        &[
            ("name", string()),
            ("is_public", boolean()),
            ("allowed_mime_types", array(string())),
            ("max_size_bytes", json!({"type": ["integer", "null"]})),
        ],
        &[],
    );
    let deleted = object(&[("deleted", boolean()), ("name", string()), ("files_deleted", integer())], &["deleted"]);
    let force = [query("force", boolean(), "delete a bucket that still holds files, with its files")];
    let admin = |method, path: &str, summary| Op::new(method, path, "Admin", summary).access(Access::Admin);
    vec![
        Op::new("get", "/api/v1/storage/buckets", "Storage", "List buckets")
            .handler(buckets::list)
            .access(Access::User)
            .ok(200, array(bucket())),
        Op::new("post", "/api/v1/storage/buckets/{bucket}", "Storage", "Create a bucket")
            .handler(buckets::create)
            .access(Access::Admin)
            .request_body(json!({"required": false, "content": {"application/json": {"schema": settings.clone()}}}))
            .ok(201, bucket())
            .errors(&[409]),
        Op::new("delete", "/api/v1/storage/buckets/{bucket}", "Storage", "Delete a bucket")
            .handler(buckets::delete)
            .access(Access::Admin)
            .params(force.clone())
            .answer(204, json!({"description": "Deleted, with its files under force"}))
            .errors(&[409]),
        admin("get", "/api/v1/admin/buckets", "List buckets")
            .handler(buckets::admin_list)
            .ok(200, object(&[("buckets", array(bucket()))], &["buckets"])),
        admin("post", "/api/v1/admin/buckets", "Create a bucket")
            .handler(buckets::admin_create)
            .body(settings.clone())
            .ok(201, bucket())
            .errors(&[409]),
        admin("patch", "/api/v1/admin/buckets/{name}", "Change a bucket's settings")
            .handler(buckets::admin_update)
            .body(settings)
            .ok(200, bucket()),
        admin("delete", "/api/v1/admin/buckets/{name}", "Delete a bucket")
            .handler(buckets::admin_delete)
            .params(force)
            .ok(200, deleted)
            .errors(&[409]),
    ]
}

fn resumable_ops() -> Vec<Op> {
    let base = "/api/v1/storage/resumable";
    let item = format!("{base}/{{id}}");
    let version = header("Tus-Resumable", json!({"const": "1.0.0"}), "the protocol version: 1.0.0");
    let resume = query("token", string(), "the token in the `Location` of an upload that a signed upload URL started");
    let no_content = |text: &str| json!({"description": text});
    vec![
        Op::new("options", base, "Storage", "The resumable upload protocol spoken (tus 1.0)")
            .handler(resumable::options)
            .answer(204, no_content("`Tus-Version`, `Tus-Extension` (creation, expiration, termination), `Tus-Max-Size`")),
        Op::new("post", base, "Storage", "Start a resumable upload (tus creation)")
            .handler(resumable::create)
            .access(Access::User)
            .describe("`Upload-Length` is the file's size; `Upload-Metadata` carries `filename`, `filetype`, `bucket`, `key`, `is_public`, `collection`, `record_id` (base64 values). The bucket's limits and types are checked now; an unfinished upload expires after 24 hours (`Upload-Expires`). With `?token=` from `POST /storage/sign`, no credentials are needed: the upload is the signer's, within what was signed, and its `Location` carries a token that lets its holder go on with it.")
            .params([
                query("token", string(), "a signed upload URL's token"),
                version.clone(),
                header("Upload-Length", integer(), "the file's size in bytes"),
                header("Upload-Metadata", string(), "comma-separated `key base64(value)` pairs"),
            ])
            .answer(201, no_content("Created: `Location` is the upload's URL"))
            .errors(&[403, 404, 409, 412, 413, 415]),
        Op::new("head", item.clone(), "Storage", "How many bytes a resumable upload holds")
            .handler(resumable::head)
            .access(Access::User)
            .params([resume.clone(), version.clone()])
            .answer(200, no_content("`Upload-Offset`, `Upload-Length`, `Upload-Expires`"))
            .errors(&[403, 412]),
        unbounded(
            Op::new("patch", item.clone(), "Storage", "Append to a resumable upload")
                .handler(resumable::patch)
                .access(Access::User)
                .describe("The body (`Content-Type: application/offset+octet-stream`) is appended at `Upload-Offset`, which must be the upload's offset (else 409). Bytes that arrive before a connection breaks are kept. The last byte makes the file, checked like any upload; the answer then names it in `Ferrobase-File-Id` and `Ferrobase-File-Url`.")
                .params([resume.clone(), version.clone(), header("Upload-Offset", integer(), "where the body goes")])
                .request_body(json!({"required": true, "content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}}))
                .answer(204, no_content("Appended: `Upload-Offset` is the new offset"))
                .errors(&[403, 409, 412, 413, 415]),
        ),
        Op::new("delete", item, "Storage", "Abandon a resumable upload (tus termination)")
            .handler(resumable::delete)
            .access(Access::User)
            .params([resume, version])
            .answer(204, no_content("Deleted, with what it received"))
            .errors(&[403, 412]),
    ]
}

/// The `File` and `Bucket` schemas.
pub fn schemas() -> Vec<(&'static str, Json)> {
    let nullable = |ty: &str| json!({"type": [ty, "null"]});
    vec![
        (
            "File",
            object(
                &[
                    ("id", string()),
                    ("filename", string()),
                    ("mime_type", string()),
                    ("size", integer()),
                    ("bucket", string()),
                    ("key", string()),
                    ("url", string()),
                    ("path", string()),
                    ("is_public", boolean()),
                    ("etag", string()),
                    ("owner_id", nullable("string")),
                    ("collection", nullable("string")),
                    ("record_id", nullable("string")),
                    ("created_at", integer()),
                    ("updated_at", integer()),
                ],
                &["id", "filename", "mime_type", "size", "bucket", "url", "is_public"],
            ),
        ),
        (
            "Bucket",
            object(
                &[
                    ("name", string()),
                    ("is_public", boolean()),
                    ("allowed_mime_types", array(string())),
                    ("max_size_bytes", nullable("integer")),
                    ("created_at", integer()),
                    ("updated_at", integer()),
                ],
                &["name", "is_public", "allowed_mime_types"],
            ),
        ),
    ]
}
