cwlVersion: v1.2
class: Workflow
doc: |
  One cohort per site, each held by its own cluster under a policy that keeps it there: `extract`
  runs next to each cohort (arv:ClusterTarget, from the cohort's cluster), `merge` runs at home on
  the summaries. Only the summaries travel; the scripts reach the sites on demand.
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  ScatterFeatureRequirement: {}
inputs:
  cohorts: File[]
  clusters: string[]
  min_age: int
  extract_script: File
  merge_script: File
outputs:
  table: {type: File, outputSource: merge/table}
  result: {type: File, outputSource: merge/result}
  plot: {type: File, outputSource: merge/plot}
  summaries: {type: "File[]", outputSource: extract/summary}
steps:
  extract:
    run: extract.cwl
    scatter: [cohort, where]
    scatterMethod: dotproduct
    in:
      script: extract_script
      cohort: cohorts
      where: clusters
      min_age: min_age
    out: [summary]
    hints:
      arv:ClusterTarget:
        cluster_id: $(inputs.where)
  merge:
    run: merge.cwl
    in:
      script: merge_script
      summaries: extract/summary
    out: [table, result, plot]
