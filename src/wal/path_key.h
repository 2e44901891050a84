// How the in-memory envs name files: normalised path strings, no trailing separator.
#pragma once

#include <filesystem>
#include <string>

namespace sqsrelay::wal {

inline std::string path_key(const std::filesystem::path& p) {
  std::string s = p.lexically_normal().string();
  if (s.size() > 1 && s.back() == '/') s.pop_back();
  return s == "." ? std::string() : s;
}

inline std::string parent_key(const std::string& k) {
  return path_key(std::filesystem::path(k).parent_path());
}

}  // namespace sqsrelay::wal
