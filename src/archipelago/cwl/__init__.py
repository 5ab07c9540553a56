"""Our CWL runner, on cwltool as a library: each CommandLineTool becomes a container request on
the cluster its `arv:ClusterTarget` names (else at home); files are referenced in Keep, never
copied to the runner's machine; the final output collection is saved at home."""
