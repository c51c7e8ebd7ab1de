//! The Docker `DeviceRequest` that gives a container exactly one GPU, and a check of what the
//! daemon recorded on the created container.
//!
//! Facts from docs/references.md P§3.2: the daemon rejects a request that
//! sets both `Count` and `DeviceIDs` ("cannot set both Count and DeviceIDs on device request"), so
//! `count` stays unset when pinning a UUID; it appends `NVIDIA_VISIBLE_DEVICES=<ids>` after the
//! image's environment, so a hostile `ENV NVIDIA_VISIBLE_DEVICES=all` in the image is overridden;
//! and only capabilities listed in the request become `NVIDIA_DRIVER_CAPABILITIES`, hence
//! `["gpu", "compute", "utility"]` (compute for CUDA, utility for nvidia-smi/NVML inside).

use bollard::models::DeviceRequest;

/// The capability set requested (one AND-list).
pub const GPU_CAPABILITIES: [&str; 3] = ["gpu", "compute", "utility"];

/// A request for the one GPU with this UUID, through the NVIDIA driver.
pub fn device_request(uuid: &str) -> DeviceRequest {
    DeviceRequest {
        driver: Some("nvidia".to_owned()),
        count: None,
        device_ids: Some(vec![uuid.to_owned()]),
        capabilities: Some(vec![
            GPU_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
        ]),
        options: None,
    }
}

/// Checks the device requests of a created container (`HostConfig.DeviceRequests` from inspect):
/// exactly one request, for exactly this UUID, without a count. Returns what is wrong otherwise.
pub fn check_device_requests(found: &[DeviceRequest], uuid: &str) -> Result<(), String> {
    let [req] = found else {
        return Err(format!(
            "expected exactly one device request, found {}",
            found.len()
        ));
    };
    if req.driver.as_deref() != Some("nvidia") {
        return Err(format!(
            "device request driver is {:?}, expected \"nvidia\"",
            req.driver
        ));
    }
    if req.count.is_some_and(|c| c != 0) {
        return Err(format!(
            "device request has count {:?}; a pinned GPU must not set a count",
            req.count
        ));
    }
    match req.device_ids.as_deref() {
        Some([id]) if id == uuid => Ok(()),
        other => Err(format!(
            "device request names devices {other:?}, expected exactly [{uuid:?}]"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "GPU-fa6e0000-0000-4000-8000-000000000000";

    #[test]
    fn request_pins_one_uuid_without_count() {
        let r = device_request(UUID);
        assert_eq!(r.driver.as_deref(), Some("nvidia"));
        assert_eq!(r.count, None);
        assert_eq!(r.device_ids, Some(vec![UUID.to_owned()]));
        assert_eq!(
            r.capabilities,
            Some(vec![vec![
                "gpu".to_owned(),
                "compute".to_owned(),
                "utility".to_owned()
            ]])
        );
        assert_eq!(r.options, None);
        // On the wire, Count is absent (not 0, not -1) and the ids are the UUID.
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("Count").is_none(), "{v}");
        assert_eq!(v["DeviceIDs"], serde_json::json!([UUID]));
        assert_eq!(
            v["Capabilities"],
            serde_json::json!([["gpu", "compute", "utility"]])
        );
        assert_eq!(v["Driver"], "nvidia");
    }

    #[test]
    fn check_accepts_our_request_and_names_deviations() {
        assert_eq!(check_device_requests(&[device_request(UUID)], UUID), Ok(()));
        // Docker reports an unset count as 0 after inspect.
        let inspected = DeviceRequest {
            count: Some(0),
            ..device_request(UUID)
        };
        assert_eq!(check_device_requests(&[inspected], UUID), Ok(()));
        assert!(
            check_device_requests(&[], UUID)
                .unwrap_err()
                .contains("found 0")
        );
        let all = DeviceRequest {
            count: Some(-1),
            device_ids: None,
            ..device_request(UUID)
        };
        assert!(
            check_device_requests(&[all], UUID)
                .unwrap_err()
                .contains("count")
        );
        let two = DeviceRequest {
            device_ids: Some(vec![UUID.into(), "GPU-2".into()]),
            ..device_request(UUID)
        };
        assert!(
            check_device_requests(&[two], UUID)
                .unwrap_err()
                .contains("expected exactly")
        );
        let other = device_request("GPU-2");
        assert!(check_device_requests(&[other], UUID).is_err());
        assert!(
            check_device_requests(&[device_request(UUID), device_request(UUID)], UUID).is_err()
        );
    }
}
