//! The vision worker: a thread that owns the models and analyses one frame at a time, always
//! the newest, so a slow frame never queues others; and the 1:N gallery it identifies against.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::base::config::PolicyConfig;
use crate::base::error::Result;
use crate::base::frame::Frame;
use crate::kiosk::events::{FaceObs, VisionRequest};
use crate::store::Store;
use crate::vision::Vision;
use crate::vision::detect::Face;
use crate::vision::matcher::{self, Gallery};

/// The templates of everyone who consented, and whose each gallery entry is.
pub type SharedGallery = Arc<Mutex<(Gallery, Vec<String>)>>;

/// A request to the vision worker.
pub struct Job {
    /// The frame to analyse.
    pub frame: Arc<Frame>,
    /// What the machine wants from it.
    pub request: VisionRequest,
    /// The claimed person's templates, for 1:1 verification.
    pub templates: Vec<Vec<f32>>,
    /// The face in the previous frame, for the motion gate.
    pub prev: Option<Face>,
}

/// What the vision worker found: the observation, and for 1:N the employee id matched.
pub struct Done {
    /// What was asked for (pre-roll frames go to the pre-roll, not to the machine).
    pub request: VisionRequest,
    /// The observation for the machine.
    pub obs: FaceObs,
    /// Who the face is, by 1:N search, with the similarity.
    pub identified: Option<(String, f32)>,
}

/// Runs on its own thread until the job channel closes or nobody listens for results.
pub fn run(
    mut v: Vision,
    gallery: SharedGallery,
    jobs: std::sync::mpsc::Receiver<Job>,
    done: mpsc::UnboundedSender<Done>,
) {
    while let Ok(job) = jobs.recv() {
        let want_embedding = job.request != VisionRequest::Off;
        let analysis = match v.analyse(&job.frame, job.prev.as_ref(), true, want_embedding) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "frame analysis failed");
                let _ = done.send(Done {
                    request: job.request,
                    obs: FaceObs::default(),
                    identified: None,
                });
                continue;
            }
        };
        let mut obs = FaceObs {
            guidance: Some(analysis.guidance),
            face: analysis.face.clone(),
            liveness: analysis.liveness.clone(),
            ..Default::default()
        };
        let mut identified = None;
        if let Some(e) = &analysis.embedding {
            match &job.request {
                VisionRequest::Verify(_) => obs.similarity = matcher::verify(e, &job.templates),
                VisionRequest::Identify => {
                    // The margin rule: the best person must beat everyone else clearly.
                    let g = gallery.lock().unwrap();
                    if let Some((hit, second)) = g.0.best_and_runner_up(e)
                        && second.is_none_or(|s| hit.score - s >= v.config.identify_margin)
                    {
                        identified = Some((g.1[g.0.owner(hit.index) as usize].clone(), hit.score));
                    }
                }
                VisionRequest::Enrol | VisionRequest::Track => obs.embedding = Some(e.clone()),
                VisionRequest::Off => {}
            }
        }
        let request = job.request;
        if done
            .send(Done {
                request,
                obs,
                identified,
            })
            .is_err()
        {
            return;
        }
    }
}

/// The gallery of everyone with consent and templates of `model` (`dims` long).
pub fn build_gallery(
    store: &Store,
    model: &str,
    dims: usize,
    policy: &PolicyConfig,
) -> Result<(Gallery, Vec<String>)> {
    let mut g = Gallery::new(dims);
    let mut owners = Vec::new();
    // Only faces whose consent is in force: given, and for the current notice or still
    // within its grace period.
    let usable = store.face_usable_ids(policy)?;
    for (id, templates) in store.all_templates(model)? {
        if usable.contains(&id) {
            for t in templates.iter().filter(|t| t.vector.len() == dims) {
                g.add(owners.len() as u32, &t.vector);
            }
            owners.push(id);
        }
    }
    Ok((g, owners))
}

/// Replaces the shared gallery, even when a panicking thread poisoned its lock.
pub fn replace(gallery: &SharedGallery, g: (Gallery, Vec<String>)) {
    *gallery.lock().unwrap_or_else(|p| p.into_inner()) = g;
}
