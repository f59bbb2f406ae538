//! petal as a DICOM node: the DIMSE C-STORE / C-ECHO provider, driven by real peers
//! (dcmtk's echoscu and storescu, Orthanc 1.10 as the hospital PACS) and by petal's own
//! service user where a test must force a status that those tools cannot send.
//! The tools come from Debian packages that `scripts/setup` installs; a missing tool fails
//! the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use petal::dicom::part10::{self, DataSetIdentity};
use petal::dimse::command::status;
use petal::dimse::scu::{PeerNode, ScuError};
use petal::storage::audit::{self, AuditQuery};

use crate::common::{Engine, TestApp};
use crate::fixtures::SeriesSpec;
use crate::on_both_engines;
use crate::stow::indexed;

/// The calling AE titles the tests' server allows; `INTRUDER` is not among them.
const CALLING: &str = "STORESCU,ECHOSCU,ORTHANC,PETAL-TEST@127.0.0.1";

async fn spawn(engine: Engine, extra: &[&str]) -> TestApp {
    let mut args = vec!["--dimse-listen", "127.0.0.1:0", "--dimse-calling-aes", CALLING, "--series-quiet-period", "2s"];
    args.extend_from_slice(extra);
    TestApp::spawn_with(engine, &args).await
}

fn port(app: &TestApp) -> u16 {
    app.dimse_port.expect("DIMSE is on")
}

/// Runs a dcmtk tool; fails the test when it is not installed.
fn dcmtk(tool: &str, args: &[String]) -> Output {
    let path = Path::new("/usr/bin").join(tool);
    assert!(path.exists(), "{tool} is missing: run scripts/setup (Debian package dcmtk)");
    Command::new(path).args(args).output().unwrap_or_else(|e| panic!("running {tool}: {e}"))
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn node_args(calling: &str, called: &str, port: u16) -> Vec<String> {
    vec!["-aet".into(), calling.into(), "-aec".into(), called.into(), "127.0.0.1".into(), port.to_string()]
}

fn petal_scu(port: u16) -> PeerNode {
    PeerNode {
        host: "127.0.0.1".into(),
        port,
        ae_title: "PETAL".into(),
        calling_ae_title: "PETAL-TEST".into(),
        timeout: Duration::from_secs(10),
        max_pdu_length: 16384,
    }
}

/// Writes the series' files into `dir`, one per slice.
fn write_series(series: &SeriesSpec, dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("series dir");
    (0..series.slices)
        .map(|i| {
            let path = dir.join(format!("slice-{i}.dcm"));
            std::fs::write(&path, series.instance(i).expect("instance")).expect("write instance");
            path
        })
        .collect()
}

fn stored_uids(series: &SeriesSpec) -> Vec<String> {
    let mut uids: Vec<String> = (0..series.slices).map(|i| series.sop_instance_uid(i)).collect();
    uids.sort();
    uids
}

async fn indexed_uids_of(app: &TestApp, series: &SeriesSpec) -> Vec<String> {
    indexed(&app.db).await.into_iter().map(|(uid, _)| uid).filter(|uid| uid.starts_with(&series.series_uid)).collect()
}

/// A counter of `/metrics`, summed over the lines that start with `prefix`.
async fn metric(app: &TestApp, prefix: &str) -> f64 {
    let body = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    body.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// echoscu gets success; a wrong called AE title and a calling AE title not on the list
/// are rejected, permanently, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_succeeds_and_unknown_nodes_are_rejected() {
    let app = spawn(Engine::Sqlite, &[]).await;
    let port = port(&app);

    let echo = dcmtk("echoscu", &node_args("ECHOSCU", "PETAL", port));
    assert!(echo.status.success(), "echoscu: {}", text(&echo));

    let wrong_called = dcmtk("echoscu", &node_args("ECHOSCU", "NOT-PETAL", port));
    assert!(!wrong_called.status.success(), "a wrong called AE title is rejected");
    assert!(text(&wrong_called).contains("Called AE Title Not Recognized"), "{}", text(&wrong_called));

    let intruder = dcmtk("echoscu", &node_args("INTRUDER", "PETAL", port));
    assert!(!intruder.status.success(), "a calling AE title not on the list is rejected");
    assert!(text(&intruder).contains("Calling AE Title Not Recognized"), "{}", text(&intruder));

    let mut pinned_elsewhere = petal_scu(port);
    pinned_elsewhere.calling_ae_title = "ORTHANC".into();
    assert_eq!(pinned_elsewhere.echo().await.expect("ORTHANC may call from anywhere"), status::SUCCESS);
    let mut unknown = petal_scu(port);
    unknown.calling_ae_title = "INTRUDER".into();
    match unknown.echo().await {
        Err(err @ ScuError::Rejected { .. }) => assert!(!err.is_transient(), "a refused AE title is final: {err}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    app.stop().await;
}

/// storescu sends a series, at the smallest PDU size and re-encoded as implicit VR little
/// endian; every instance is stored once, audited with the calling node, and the series is
/// denoised like one received by STOW-RS.
async fn storescu_sends_a_series(engine: Engine) {
    let app = spawn(engine, &[]).await;
    let port = port(&app);
    let dir = app.database.dir.path().join("send");
    let series = SeriesSpec::new(3);
    let files = write_series(&series, &dir);

    let mut args = vec!["-pdu".to_owned(), "4096".into(), "-xi".into()];
    args.extend(node_args("STORESCU", "PETAL", port));
    args.extend(files.iter().map(|f| f.display().to_string()));
    let sent = dcmtk("storescu", &args);
    assert!(sent.status.success(), "storescu: {}", text(&sent));
    assert_eq!(indexed_uids_of(&app, &series).await, stored_uids(&series), "every instance is stored");

    // Sending again is harmless: the same instances, still stored once.
    let again = dcmtk("storescu", &args);
    assert!(again.status.success(), "re-sending: {}", text(&again));
    assert_eq!(indexed_uids_of(&app, &series).await.len(), 3, "re-sent instances are stored once");

    let events = audit::page(
        &app.db,
        &AuditQuery {
            actor: Some("dimse:STORESCU@127.0.0.1".into()),
            action: Some("dicom.store".into()),
            limit: 10,
            ..AuditQuery::default()
        },
    )
    .await
    .expect("audit trail");
    assert_eq!(events.len(), 2, "one event per association and study: {events:?}");
    assert!(events.iter().all(|e| e.resource == format!("/dicomweb/studies/{}", series.study_uid)));
    assert!(events.iter().all(|e| e.outcome == "success" && e.patient_key.is_some()));

    // Deflated on the wire (storescu proposes deflate first with -xd): stored as received,
    // and served in explicit VR like any other.
    let deflated = SeriesSpec::new(2);
    let mut args = vec!["-xd".to_owned()];
    args.extend(node_args("STORESCU", "PETAL", port));
    args.extend(write_series(&deflated, &dir.join("deflated")).iter().map(|f| f.display().to_string()));
    let sent = dcmtk("storescu", &args);
    assert!(sent.status.success(), "storescu -xd: {}", text(&sent));
    let path = format!(
        "/dicomweb/studies/{}/series/{}/instances/{}",
        deflated.study_uid,
        deflated.series_uid,
        deflated.sop_instance_uid(1)
    );
    assert_eq!(retrieved_syntax(&app, &path, "application/dicom; transfer-syntax=*").await, DEFLATED);
    assert_eq!(retrieved_syntax(&app, &path, "application/dicom").await, EXPLICIT);

    // RLE lossless, which petal decodes: stored as received (compressed syntaxes are never
    // re-encoded), and its pixels read back through the frames resource.
    let rle = SeriesSpec::new(1);
    let rle_dir = dir.join("rle");
    let plain = write_series(&rle, &rle_dir).remove(0);
    let compressed = rle_dir.join("rle.dcm");
    let converted = dcmtk("dcmcrle", &[plain.display().to_string(), compressed.display().to_string()]);
    assert!(converted.status.success(), "dcmcrle: {}", text(&converted));
    // storescu proposes RLE only when asked (-xr).
    let mut args = vec!["-xr".to_owned()];
    args.extend(node_args("STORESCU", "PETAL", port));
    args.push(compressed.display().to_string());
    let sent = dcmtk("storescu", &args);
    assert!(sent.status.success(), "storescu of an RLE instance: {}", text(&sent));
    let path =
        format!("/dicomweb/studies/{}/series/{}/instances/{}", rle.study_uid, rle.series_uid, rle.sop_instance_uid(0));
    assert_eq!(retrieved_syntax(&app, &path, "application/dicom; transfer-syntax=*").await, RLE);
    let frame = app
        .client
        .get(app.url(&format!("{path}/frames/1")))
        .bearer_auth(&app.admin_token)
        .header("accept", "multipart/related; type=\"application/octet-stream\"")
        .send()
        .await
        .expect("frames");
    assert_eq!(frame.status(), reqwest::StatusCode::OK, "the RLE pixels decode");

    // Received in implicit VR: kept as received, served in explicit VR to DICOMweb clients.
    let path = format!(
        "/dicomweb/studies/{}/series/{}/instances/{}",
        series.study_uid,
        series.series_uid,
        series.sop_instance_uid(0)
    );
    assert_eq!(retrieved_syntax(&app, &path, "application/dicom; transfer-syntax=*").await, IMPLICIT);
    assert_eq!(retrieved_syntax(&app, &path, "application/dicom").await, EXPLICIT, "PS3.18's default");
    assert_eq!(
        retrieved_syntax(&app, &path, &format!("application/dicom; transfer-syntax={EXPLICIT}")).await,
        EXPLICIT
    );

    let state = crate::pipeline::wait_for_state(&app, &series.series_uid, &["done", "failed"]).await;
    assert_eq!(state["state"], "done", "a series received by C-STORE is denoised: {state}");
    app.stop().await;
}
on_both_engines!(storescu_sends_a_series);

const IMPLICIT: &str = "1.2.840.10008.1.2";
const EXPLICIT: &str = "1.2.840.10008.1.2.1";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const RLE: &str = "1.2.840.10008.1.2.5";

/// Retrieves one instance with `accept`; the transfer syntax its file meta group names,
/// after checking that the Content-Type names the same one and that the file opens.
async fn retrieved_syntax(app: &TestApp, path: &str, accept: &str) -> String {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.admin_token)
        .header("accept", accept)
        .send()
        .await
        .expect("WADO-RS");
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{accept}");
    let content_type = response.headers()["content-type"].to_str().expect("content type").to_owned();
    let bytes = response.bytes().await.expect("body");
    let object = dicom_object::OpenFileOptions::new().from_reader(&bytes[128..]).expect("a DICOM file");
    let syntax = object.meta().transfer_syntax().to_owned();
    assert!(content_type.ends_with(&format!("transfer-syntax={syntax}")), "{content_type} names {syntax}");
    assert_eq!(object.element(dicom_dictionary_std::tags::ROWS).expect("rows").to_int::<u16>().expect("rows"), 16);
    syntax
}

/// A PET/CT study is sent whole: the CT is answered success and dropped (counted), unless
/// the setting refuses other objects at negotiation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ct_of_a_pet_ct_study_is_dropped_or_refused_as_configured() {
    let app = spawn(Engine::Sqlite, &[]).await;
    let dimse_port = port(&app);
    let mut ct = SeriesSpec::new(2);
    ct.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2".into();
    let mut pet = SeriesSpec::new(1);
    pet.study_uid = ct.study_uid.clone();
    let mut files = write_series(&ct, &app.database.dir.path().join("ct"));
    files.extend(write_series(&pet, &app.database.dir.path().join("pet")));
    let dropped_before = metric(&app, "petal_dimse_cstore_total{status=\"dropped\"}").await;

    let mut args = node_args("STORESCU", "PETAL", dimse_port);
    args.extend(files.iter().map(|f| f.display().to_string()));
    let sent = dcmtk("storescu", &args);
    assert!(sent.status.success(), "a PET/CT study is accepted whole: {}", text(&sent));
    assert!(indexed_uids_of(&app, &ct).await.is_empty(), "the CT is not stored");
    assert_eq!(indexed_uids_of(&app, &pet).await.len(), 1, "the PET is stored");
    let dropped = metric(&app, "petal_dimse_cstore_total{status=\"dropped\"}").await - dropped_before;
    assert!(dropped >= 2.0, "the dropped CT is counted ({dropped})");
    app.stop().await;

    let refusing = spawn(Engine::Sqlite, &["--dimse-other-objects", "refuse"]).await;
    let file = ct.instance(0).expect("CT instance");
    let (identity, data_set) = part10::split(&file).expect("split");
    match petal_scu(port(&refusing)).store(&identity, data_set).await {
        Err(err @ ScuError::NoContext { .. }) => assert!(!err.is_transient(), "{err}"),
        other => panic!("CT must be refused at negotiation, got {other:?}"),
    }
    refusing.stop().await;
}

/// Every failure status, forced: the answer says what went wrong, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_gets_its_status_and_stores_nothing() {
    let app = spawn(Engine::Sqlite, &[]).await;
    let scu = petal_scu(port(&app));
    let series = SeriesSpec::new(3);

    // Not a data set at all: cannot understand.
    let garbage = DataSetIdentity {
        sop_class_uid: series.sop_class_uid.clone(),
        sop_instance_uid: series.sop_instance_uid(0),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
    };
    let answer = scu.store(&garbage, b"\x08\x00\x18\x00UI\xff\xff this is not DICOM").await.expect("answered");
    assert_eq!(answer.status & 0xF000, 0xC000, "garbage: {answer:?}");

    // A PET data set without its StudyInstanceUID: does not match the SOP class.
    let mut object = series.dataset(1);
    object.remove_element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
    let file =
        petal::dicom::synthetic::write_file(object, &series.sop_class_uid, &series.sop_instance_uid(1)).expect("file");
    let (identity, data_set) = part10::split(&file).expect("split");
    let answer = scu.store(&identity, data_set).await.expect("answered");
    assert_eq!(answer.status, status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS, "{answer:?}");
    assert!(answer.error_comment.unwrap_or_default().contains("StudyInstanceUID"), "the comment names the attribute");

    // A data set that is not the instance the command announced.
    let file = series.instance(2).expect("instance");
    let (mut identity, data_set) = part10::split(&file).expect("split");
    identity.sop_instance_uid = format!("{}.99", series.series_uid);
    let answer = scu.store(&identity, data_set).await.expect("answered");
    assert_eq!(answer.status, status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS, "{answer:?}");

    assert!(indexed_uids_of(&app, &series).await.is_empty(), "no failed instance is stored");
    app.stop().await;

    // Free disk below the floor: out of resources, and nothing written.
    let full = spawn(Engine::Sqlite, &["--dimse-min-free-disk", "999999GiB"]).await;
    let file = series.instance(0).expect("instance");
    let (identity, data_set) = part10::split(&file).expect("split");
    let answer = petal_scu(port(&full)).store(&identity, data_set).await.expect("answered");
    assert_eq!(answer.status, status::OUT_OF_RESOURCES, "{answer:?}");
    assert!(indexed_uids_of(&full, &series).await.is_empty());
    let blobs = full.database.dir.path().join("blobs");
    let written = walk(&blobs);
    assert!(written.is_empty(), "no blob is left behind: {written:?}");
    full.stop().await;
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() { walk(&path) } else { vec![path] }
        })
        .collect()
}

/// More associations than allowed are turned away as transient (the sender retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_associations_are_rejected_as_transient() {
    let app = spawn(Engine::Sqlite, &["--dimse-max-associations", "1"]).await;
    let port = port(&app);
    let holding = dicom_ul::association::client::ClientAssociationOptions::new()
        .calling_ae_title("PETAL-TEST")
        .called_ae_title("PETAL")
        .with_abstract_syntax(petal::dimse::syntaxes::VERIFICATION)
        .establish_async(format!("127.0.0.1:{port}"))
        .await
        .expect("the first association is accepted");
    match petal_scu(port).echo().await {
        Err(err @ ScuError::Rejected { .. }) => assert!(err.is_transient(), "a full server asks to retry: {err}"),
        other => panic!("expected a transient rejection, got {other:?}"),
    }
    let _ = holding.release().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(petal_scu(port).echo().await.expect("a slot is free again"), status::SUCCESS);
    app.stop().await;
}

/// DIMSE on without an allow-list refuses to start, and says what to set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimse_without_an_allow_list_refuses_to_start() {
    use clap::Parser;
    use petal::app::config::{Cli, Command as PetalCommand};
    let database = crate::common::TestDatabase::create(Engine::Sqlite).await;
    let args =
        ["petal", "serve", "--listen", "127.0.0.1:0", "--dimse-listen", "127.0.0.1:0", "--database-url", &database.url];
    let PetalCommand::Serve(serve) = Cli::try_parse_from(args).expect("flags parse").command else {
        unreachable!("a serve command")
    };
    let error = petal::Application::build(serve).await.err().expect("refuses to start");
    assert!(error.to_string().contains("PETAL_DIMSE_CALLING_AES"), "{error:#}");
}
