/* filled in by the OTA part */ typedef int tf_ota_placeholder_t;
