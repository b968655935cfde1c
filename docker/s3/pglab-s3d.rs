//! The lab's object store: s3s-fs serving a directory as S3, on loopback
//! (stunnel in front does TLS), with three things the lab needs that its
//! own binary does not do:
//! - the key comes from the environment, not the command line;
//! - every connection sets TCP_NODELAY: a response's head and body are two
//!   writes, and without it each waited for the client's delayed ACK
//!   (40 ms a request: `pgbackrest verify` of a fresh backup took 38 s);
//! - `HEAD`/`GET` of a key that is a directory on disk (a "prefix" in S3
//!   terms, which pgBackRest asks about) answers 404 NoSuchKey, as S3
//!   does, not 500.
//!
//! Environment: PGLAB_S3_KEY, PGLAB_S3_KEY_SECRET, PGLAB_S3_DOMAIN (the host
//! name virtual-host requests use); PGLAB_S3_ROOT (default /var/lib/pglab-s3),
//! PGLAB_S3_LISTEN (default 127.0.0.1:5000).

use std::path::PathBuf;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::host::MultiDomain;
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use s3s_fs::FileSystem;
use tokio::net::TcpListener;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("pglab-s3d {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env().add_directive("info".parse()?)).with_ansi(false).init();
    let root = PathBuf::from(std::env::var("PGLAB_S3_ROOT").unwrap_or_else(|_| "/var/lib/pglab-s3".into()));
    let listen = std::env::var("PGLAB_S3_LISTEN").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let fs = FileSystem::new(&root).map_err(|e| format!("{}: {e:?}", root.display()))?;
    tracing::info!("serving {} at http://{listen}", root.display());
    let store = Store { fs, root };
    let service = {
        let mut b = S3ServiceBuilder::new(store);
        b.set_auth(SimpleAuth::from_single(env("PGLAB_S3_KEY")?, env("PGLAB_S3_KEY_SECRET")?));
        b.set_host(MultiDomain::new(&[env("PGLAB_S3_DOMAIN")?])?);
        b.build()
    };
    let listener = TcpListener::bind(&listen).await?;
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::error!("accept: {e}");
                continue;
            }
        };
        // A connection reset before this point is that client's loss, not the server's end.
        if let Err(e) = socket.set_nodelay(true) {
            tracing::warn!("TCP_NODELAY: {e}");
        }
        let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// s3s-fs, with keys that are directories on disk answered as absent.
struct Store {
    fs: FileSystem,
    root: PathBuf,
}

impl Store {
    /// S3 has no directories: a key that names one on disk is no object.
    async fn object(&self, bucket: &str, key: &str) -> S3Result<()> {
        let path = self.root.join(bucket).join(key);
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_dir() => Err(s3_error!(NoSuchKey)),
            _ => Ok(()),
        }
    }
}

/// The S3 operations: `HEAD` and `GET` look at the key first; every other
/// operation pgBackRest (and the lab's tools) use goes to s3s-fs as it is.
/// (One macro for the whole impl: `async_trait` must see every method.)
macro_rules! store_ops {
    ($($op:ident: $input:ty => $output:ty;)*) => {
        #[async_trait::async_trait]
        impl S3 for Store {
            async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
                self.object(&req.input.bucket, &req.input.key).await?;
                self.fs.head_object(req).await
            }

            async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
                self.object(&req.input.bucket, &req.input.key).await?;
                self.fs.get_object(req).await
            }

            $(async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                self.fs.$op(req).await
            })*
        }
    };
}

store_ops! {
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
    complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput;
    copy_object: CopyObjectInput => CopyObjectOutput;
    create_bucket: CreateBucketInput => CreateBucketOutput;
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput;
    delete_bucket: DeleteBucketInput => DeleteBucketOutput;
    delete_object: DeleteObjectInput => DeleteObjectOutput;
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput;
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
    head_bucket: HeadBucketInput => HeadBucketOutput;
    list_buckets: ListBucketsInput => ListBucketsOutput;
    list_objects: ListObjectsInput => ListObjectsOutput;
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output;
    list_parts: ListPartsInput => ListPartsOutput;
    put_object: PutObjectInput => PutObjectOutput;
    upload_part: UploadPartInput => UploadPartOutput;
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput;
}
